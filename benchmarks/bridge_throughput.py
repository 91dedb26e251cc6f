"""Queries per second of the JAX attack bridge vs TextAttack's PyTorchModelWrapper around an
equivalent torch CNN with the same weights, on the same SST-2 texts, in one process.

  .venv/bin/python benchmarks/bridge_throughput.py [--workdir runs/sst2_cnn] [--texts 4000]

The workdir must hold a trained CNN (e.g. the README's sst2_cnn run). Both sides see the texts in
the same batches TextAttack sends (lists of up to 32); the bridge's cache is cleared per repeat so
every query runs the model. torch gets as many threads as JAX's CPU client uses.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def torch_cnn(trained):
  import torch
  import torch.nn as nn

  params = trained.params
  kernels = tuple(trained.config.model.cnn_kernel_sizes)

  class TorchCNN(nn.Module):
    """Same function as flat_jax.models.cnn.CNNEncoder + head (inference)."""

    def __init__(self):
      super().__init__()
      emb = np.asarray(params["embed"]["embedding"])
      self.embed = nn.Embedding.from_pretrained(torch.tensor(emb), freeze=True)
      self.convs = nn.ModuleList()
      for k in kernels:
        conv = nn.Conv1d(emb.shape[1], trained.config.model.cnn_num_filters, k)
        w = np.asarray(params["encoder"][f"conv_{k}"]["kernel"])  # (k, in, out)
        conv.weight.data = torch.tensor(np.transpose(w, (2, 1, 0)).copy())
        conv.bias.data = torch.tensor(np.asarray(params["encoder"][f"conv_{k}"]["bias"]))
        self.convs.append(conv)
      self.head = nn.Linear(
        len(kernels) * trained.config.model.cnn_num_filters, trained.num_classes
      )
      self.head.weight.data = torch.tensor(np.asarray(params["head"]["kernel"]).T.copy())
      self.head.bias.data = torch.tensor(np.asarray(params["head"]["bias"]))

    def forward(self, ids):
      real = (ids != 0).float()
      x = (self.embed(ids) * real[..., None]).transpose(1, 2)  # (B, D, L)
      pooled = []
      for k, conv in zip(kernels, self.convs):
        h = torch.relu(conv(nn.functional.pad(x, (0, k - 1))))  # (B, F, L)
        pooled.append((h * real[:, None, :]).max(dim=2).values)
      return self.head(torch.cat(pooled, dim=1))

  return TorchCNN().eval()


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--workdir", default="runs/sst2_cnn")
  parser.add_argument("--texts", type=int, default=4000)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()

  from flat_jax.attacks import resources

  resources.prepare_textattack_environment()
  import torch
  from textattack.models.wrappers import PyTorchModelWrapper

  from flat_jax.attacks.bridge import PredictionBridge
  from flat_jax.config import preset
  from flat_jax.data.datasets import load_dataset
  from flat_jax.data.text import clean_text
  from flat_jax.training.artifacts import load_trained

  trained = load_trained(args.workdir)
  if trained.config.model.name != "cnn" or "word_mask" in trained.params:
    raise SystemExit(f"{args.workdir}: needs a base CNN run")
  threads = os.cpu_count()  # XLA's CPU client uses every core
  torch.set_num_threads(threads)
  texts = load_dataset(preset("sst2", "cnn").data).train.texts
  # TextAttack queries many near-duplicates of one text; drop one word at a time like WIR does
  queries = []
  for text in texts:
    words = text.split()
    queries.extend(" ".join(words[:i] + words[i + 1 :]) for i in range(len(words)))
    if len(queries) >= args.texts:
      break
  queries = queries[: args.texts]
  batches = [queries[i : i + 32] for i in range(0, len(queries), 32)]
  max_length = trained.config.data.max_length

  class Tokenizer:
    def __call__(self, batch):
      return trained.text.vocab.encode_batch([clean_text(t) for t in batch], max_length)[0].tolist()

  torch_wrapper = PyTorchModelWrapper(torch_cnn(trained), Tokenizer())
  bridge = PredictionBridge.from_trained(trained)

  def run_bridge():
    bridge._cache.clear()
    return np.concatenate([bridge(b) for b in batches])

  def run_torch():
    with torch.no_grad():
      logits = np.concatenate([np.asarray(torch_wrapper(b)) for b in batches])  # it returns numpy
    return np.exp(logits - logits.max(-1, keepdims=True)) / np.exp(
      logits - logits.max(-1, keepdims=True)
    ).sum(-1, keepdims=True)

  jax_probs, torch_probs = run_bridge(), run_torch()  # warm-up, and the same function?
  diff = float(np.abs(jax_probs - torch_probs).max())
  times = {"jax": [], "torch": []}
  for _ in range(args.repeats):  # interleaved A/B
    for name, fn in (("jax", run_bridge), ("torch", run_torch)):
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
  qps = {k: len(queries) / statistics.median(v) for k, v in times.items()}
  print(
    f"queries: {len(queries)} in batches of 32, torch threads {threads}, max |p_jax - p_torch| = {diff:.2e}"
  )
  print(f"| side | queries/s (median of {args.repeats}) |")
  print("|---|---|")
  print(f"| flat_jax bridge (jit, buckets) | {qps['jax']:.0f} |")
  print(f"| TextAttack PyTorchModelWrapper (torch CNN, same weights) | {qps['torch']:.0f} |")
  print(f"ratio jax/torch: {qps['jax'] / qps['torch']:.2f}x")


if __name__ == "__main__":
  main()
