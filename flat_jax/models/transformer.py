"""BERT / DeBERTa classifiers as a run config describes them.

`model.pretrained` names a Hugging Face checkpoint directory; empty means the offline MiniLM BERT
(flat_jax.models.checkpoints_hf.default_bert_dir) for BERT, and nothing for DeBERTa (none exists
offline). `model.from_scratch` builds the architecture at the `model.scratch_*` size with random
weights, keeping only the checkpoint's tokenizer (the offline MiniLM's when `pretrained` is empty).

A workdir keeps what is needed to rebuild its model without the checkpoint: architecture.json and
the tokenizer files (tokenizer/).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import jax

from flat_jax.models.bert import BertConfig
from flat_jax.models.checkpoints_hf import (
  CheckpointError,
  build_classifier,
  default_bert_dir,
  init_classifier_params,
  load_hf_checkpoint,
  load_tokenizer,
)
from flat_jax.models.deberta import DebertaConfig
from flat_jax.models.word_mask import WordMask

TOKENIZER_DIR = "tokenizer"
ARCHITECTURE_FILE = "architecture.json"


@dataclasses.dataclass
class TransformerSource:
  arch: BertConfig | DebertaConfig
  tokenizer: Any
  pretrained: dict | None  # converted checkpoint params; None from scratch
  description: str


def checkpoint_dir(model_config) -> pathlib.Path:
  if model_config.pretrained:
    return pathlib.Path(model_config.pretrained)
  if model_config.name == "bert" or model_config.from_scratch:
    try:
      return default_bert_dir()
    except FileNotFoundError as e:
      raise CheckpointError(f"{e} (model.pretrained is empty)") from e
  raise CheckpointError(
    "model.name=deberta needs model.pretrained=DIR (a DeBERTa checkpoint directory such as a local "
    "copy of microsoft/deberta-base); no pretrained DeBERTa exists offline. "
    "--config.model.from_scratch=True trains one from random weights instead."
  )


def scratch_architecture(model_config, tokenizer) -> BertConfig | DebertaConfig:
  """A fresh architecture of the configured size over the tokenizer's vocabulary; DeBERTa is
  deberta-base's kind (relative c2p|p2c attention, no absolute positions in the input)."""
  special = dict(
    vocab_size=len(tokenizer),
    pad_id=int(tokenizer.pad_token_id),
    cls_id=int(tokenizer.cls_token_id),
    sep_id=int(tokenizer.sep_token_id),
    hidden_size=model_config.scratch_hidden,
    num_layers=model_config.scratch_layers,
    num_heads=model_config.scratch_heads,
    intermediate_size=model_config.scratch_intermediate,
  )
  if model_config.name == "bert":
    return BertConfig(**special)
  return DebertaConfig(
    **special, relative_attention=True, pos_att_type=("c2p", "p2c"), position_biased_input=False
  )


def load_source(model_config) -> TransformerSource:
  directory = checkpoint_dir(model_config)
  if model_config.from_scratch:
    tokenizer = load_tokenizer(directory)
    arch = scratch_architecture(model_config, tokenizer)
    return TransformerSource(
      arch,
      tokenizer,
      None,
      f"random {model_config.name} ({arch.num_layers} layers, hidden "
      f"{arch.hidden_size}), tokenizer of {directory}",
    )
  arch, params, tokenizer = load_hf_checkpoint(directory)
  wanted = BertConfig if model_config.name == "bert" else DebertaConfig
  if not isinstance(arch, wanted):
    raise CheckpointError(
      f"{directory} holds a {type(arch).__name__[:-6]} checkpoint, but "
      f"model.name={model_config.name}"
    )
  return TransformerSource(
    arch, tokenizer, params, f"{directory} ({arch.num_layers} layers, hidden {arch.hidden_size})"
  )


def build(arch, num_classes: int, model_config, *, with_mask: bool):
  mask = WordMask(model_config.mask_hidden, model_config.mask_temperature) if with_mask else None
  return build_classifier(arch, num_classes, mask)


def init_params(model, source: TransformerSource, seed: int) -> dict:
  """Pretrained encoder (and the head parts that fit) over a fresh init; all fresh from scratch."""
  rng = jax.random.PRNGKey(seed)
  if source.pretrained is None:
    ids = jax.numpy.full((1, 8), model.config.cls_id, jax.numpy.int32)
    return jax.jit(lambda r: model.init({"params": r}, ids, deterministic=True))(rng)["params"]
  return init_classifier_params(model, source.pretrained, rng)


# ---- the copy a workdir keeps ----


def save_architecture(arch, workdir) -> None:
  kind = "bert" if isinstance(arch, BertConfig) else "deberta"
  path = pathlib.Path(workdir) / ARCHITECTURE_FILE
  tmp = path.with_suffix(".tmp")
  tmp.write_text(json.dumps({"type": kind, "config": dataclasses.asdict(arch)}, indent=2))
  tmp.replace(path)


def load_architecture(workdir) -> BertConfig | DebertaConfig:
  path = pathlib.Path(workdir) / ARCHITECTURE_FILE
  if not path.is_file():
    raise CheckpointError(f"{path}: missing; the workdir's transformer cannot be rebuilt")
  saved = json.loads(path.read_text())
  fields = {k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()}
  return (BertConfig if saved["type"] == "bert" else DebertaConfig)(**fields)


def save_tokenizer(tokenizer, workdir) -> None:
  tokenizer.save_pretrained(str(pathlib.Path(workdir) / TOKENIZER_DIR))


def load_saved_tokenizer(workdir):
  return load_tokenizer(pathlib.Path(workdir) / TOKENIZER_DIR)
