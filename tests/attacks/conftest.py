"""Fixtures of the attack tests: a tiny masked language model (BAE, Clare) and the synonym-space
calibration harness of benchmarks/."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import pytest

from flat_jax.attacks.resources import synonym_space

ROOT = pathlib.Path(__file__).resolve().parents[2]


def make_tiny_masked_lm(directory: str | os.PathLike, num_words: int = 2000, seed: int = 0) -> str:
  """Saves a tiny random BertForMaskedLM and a lower-casing WordPiece tokenizer (the `num_words`
  most frequent alphabetic GloVe words, plus letters so any word splits into pieces) to
  `directory`, for tests; returns the folder."""
  import torch
  from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

  folder = pathlib.Path(directory).expanduser()
  folder.mkdir(parents=True, exist_ok=True)
  all_words, _ = synonym_space._offline_glove()
  words = [all_words[i] for i in synonym_space._frequent_alphabetic_rows(all_words, num_words)]
  letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
  specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  vocab = list(
    dict.fromkeys(specials + letters + [f"##{c}" for c in letters] + list(".,!?'-") + words)
  )
  (folder / "vocab.txt").write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
  tokenizer = BertTokenizerFast(
    vocab_file=str(folder / "vocab.txt"), do_lower_case=True, model_max_length=512
  )
  tokenizer.save_pretrained(folder)
  torch.manual_seed(seed)
  config = BertConfig(
    vocab_size=len(vocab),
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=512,
  )
  BertForMaskedLM(config).save_pretrained(folder)
  return str(folder)


@pytest.fixture(scope="session")
def tiny_mlm(tmp_path_factory):
  return make_tiny_masked_lm(tmp_path_factory.mktemp("mlm"))


@pytest.fixture(scope="session")
def synonym_precision():
  """benchmarks/synonym_precision.py's measure (the calibration harness is not part of the
  package)."""
  spec = importlib.util.spec_from_file_location(
    "synonym_precision", ROOT / "benchmarks" / "synonym_precision.py"
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.synonym_precision
