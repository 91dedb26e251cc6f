"""Shared pieces of the parity tests: tiny random transformers models as PyTorch references."""

from __future__ import annotations

import numpy as np
import torch

FORMATS = ("safetensors", "bin")


def perturb_(model: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> torch.nn.Module:
  """HF initialises biases to 0 and LayerNorm to (1, 0), which would hide a wrongly mapped bias or
  norm: add noise to every parameter. Returns the model in eval mode."""
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for p in model.parameters():
      p.add_(torch.randn(p.shape, generator=gen) * scale)
  return model.eval()


def save(model, directory, fmt: str) -> None:
  model.save_pretrained(directory, safe_serialization=(fmt == "safetensors"))
  names = {p.name for p in directory.iterdir()}
  assert ("model.safetensors" if fmt == "safetensors" else "pytorch_model.bin") in names, names


def padded_batch(
  vocab_size: int, lengths, *, cls_id: int, sep_id: int, pad_id: int = 0, seed: int = 0
):
  """[CLS] w... [SEP] [PAD]... rows of different lengths (counting [CLS] and [SEP]); words drawn
  from the ids above the specials."""
  rng = np.random.default_rng(seed)
  width = max(lengths)
  low = max(cls_id, sep_id, pad_id) + 1
  ids = np.full((len(lengths), width), pad_id, np.int32)
  for row, n in enumerate(lengths):
    ids[row, 0], ids[row, n - 1] = cls_id, sep_id
    ids[row, 1 : n - 1] = rng.integers(low, vocab_size, n - 2)
  return ids, (ids != pad_id).astype(np.int32)


def max_abs_diff(ours, reference, mask=None) -> float:
  ours, reference = np.asarray(ours), np.asarray(reference)
  if mask is not None:
    keep = np.asarray(mask).astype(bool)
    ours, reference = ours[keep], reference[keep]
  return float(np.max(np.abs(ours - reference)))


def torch_ids(*arrays):
  return [torch.from_numpy(np.asarray(a, np.int64)) for a in arrays]
