"""Masked language models for BAE and Clare: none exists offline, so a user's local Hugging Face
checkpoint folder is loaded (nothing is downloaded).
"""

from __future__ import annotations

import os
import pathlib

from flat_jax.attacks.resources.environment import ResourceError


def load_masked_lm(path: str | os.PathLike | None):
  """(model, tokenizer) from a local Hugging Face masked-LM folder (e.g. bert-base-uncased or
  distilroberta-base saved with save_pretrained), in eval mode. Nothing is downloaded."""
  if not path:
    raise ResourceError(
      "BAE and Clare need a masked language model and none exists offline: download one where "
      "the network works (e.g. bert-base-uncased for BAE, distilroberta-base for Clare), save "
      "it with save_pretrained, and pass that folder"
    )
  folder = pathlib.Path(path).expanduser()
  if not (folder / "config.json").is_file():
    raise ResourceError(
      f"masked language model: {folder} is not a Hugging Face model folder (no config.json)"
    )
  from transformers import AutoModelForMaskedLM, AutoTokenizer

  model = AutoModelForMaskedLM.from_pretrained(folder, local_files_only=True)
  tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, use_fast=True)
  model.eval()
  return model, tokenizer
