"""Integrated Gradients examples per second: the vectorised jitted path (all steps x batch points in
one gradient call) against a Python loop of one jitted jax.grad call per path point, and against
captum-style IG in PyTorch on the same model with the same weights (benchmarks/reference_torch.py).

  .venv/bin/python benchmarks/ig_throughput.py [--batch 32] [--steps 50] [--repeats 5] [--with-mask]

Captum-style: what captum.attr.IntegratedGradients does with method="riemann_middle" and
internal_batch_size = steps x batch (its fastest setting when memory allows): the scaled inputs of
every path point stacked into one batch, one forward and one autograd backward, the gradients
averaged per example. The explained output is the same as ours, the softmax probability of the
predicted class, and the attributions of both are compared (max abs difference printed).

Real SST-2 test sentences at the SST-2 length (50), randomly initialised CNN and LSTM classifiers
(weights do not change the cost) with a random 50-d embedding table (the offline GloVe's width).
Compilation is excluded: each side runs once before timing. The sides take turns in every repeat
(fair under a changing machine load); the median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from flat_jax.data.datasets import SHARED_DATA
from flat_jax.data.vocab import PAD_ID, Vocab
from flat_jax.interpret.ig import integrated_gradients_loop, make_integrated_gradients
import torch

from reference_torch import build_pair

MAX_LENGTH = 50


def sst2_batch(batch: int):
  with gzip.open(SHARED_DATA / "sst2" / "test.jsonl.gz", "rt", encoding="utf-8") as f:
    texts = [json.loads(line)["text"] for _, line in zip(range(batch), f)]
  vocab = Vocab.build(texts)
  ids, _ = vocab.encode_batch(texts, MAX_LENGTH)
  return len(vocab), jnp.asarray(ids), jnp.asarray(ids != PAD_ID)


def model_fns(name: str, vocab_size: int, embed_dim: int, with_mask: bool):
  """(params, embed_fn, logits_fn, torch model with the same weights)."""
  pair = build_pair(
    name, "flat" if with_mask else "base", vocab_size=vocab_size, embed_dim=embed_dim, dropout=0.0
  )
  model, params = pair.flax_model, pair.params
  embed_fn = lambda p, ids: model.apply({"params": p}, ids, method=model.embed_tokens)
  logits_fn = lambda p, e, ids, m: model.apply(
    {"params": p}, e, ids, deterministic=True, method=model.classify_embedded
  )["logits"]
  return params, embed_fn, logits_fn, pair.torch_model.eval()


def torch_integrated_gradients(model, ids: torch.Tensor, steps: int) -> torch.Tensor:
  """Captum-style IG (riemann_middle, zero baseline, one internal batch of steps x B rows) of the
  predicted class's probability; attributions summed over the embedding dimension, (B, L)."""
  token_mask = ids != 0
  with torch.no_grad():
    embedded = model.embed(ids) * token_mask[..., None]
    target = model.classify_embedded(embedded, token_mask)["logits"].argmax(-1)
  alphas = (torch.arange(steps, dtype=embedded.dtype) + 0.5) / steps
  scaled = (alphas[:, None, None, None] * embedded[None]).reshape((-1,) + embedded.shape[1:])
  scaled.requires_grad_(True)
  tile = lambda t: t.repeat((steps,) + (1,) * (t.dim() - 1))
  probs = torch.softmax(model.classify_embedded(scaled, tile(token_mask))["logits"], -1)
  chosen = probs.gather(1, tile(target)[:, None]).sum()
  (grads,) = torch.autograd.grad(chosen, scaled)
  avg_grad = grads.reshape((steps,) + embedded.shape).mean(0)
  return ((embedded * avg_grad).sum(-1) * token_mask).detach()


def median_seconds(fns, repeats: int) -> list[float]:
  """Median wall time of each fn; the fns take turns in every repeat, so a change in machine load
  hits all of them alike."""
  for fn in fns:
    jax.block_until_ready(fn())  # warm-up: compilation
  times = [[] for _ in fns]
  for _ in range(repeats):
    for fn, t in zip(fns, times):
      start = time.perf_counter()
      jax.block_until_ready(fn())
      t.append(time.perf_counter() - start)
  return [statistics.median(t) for t in times]


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--embed-dim", type=int, default=50)
  parser.add_argument("--batch-chunk", type=int, default=0, help="alphas per chunk; 0 = all")
  parser.add_argument("--with-mask", action="store_true", help="FLAT's word mask in the model")
  parser.add_argument("--models", default="cnn,lstm")
  parser.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
  args = parser.parse_args()

  vocab_size, ids, mask = sst2_batch(args.batch)
  print(
    f"device {jax.devices()[0].device_kind} ({jax.default_backend()}), batch {ids.shape[0]}, "
    f"length {MAX_LENGTH}, steps {args.steps}, word mask {args.with_mask}, "
    f"median of {args.repeats}"
  )
  torch.set_num_threads(args.torch_threads or torch.get_num_threads())
  torch_ids = torch.as_tensor(np.array(ids), dtype=torch.long)
  for name in args.models.split(","):
    params, embed_fn, logits_fn, torch_model = model_fns(
      name, vocab_size, args.embed_dim, args.with_mask
    )
    ig = make_integrated_gradients(embed_fn, logits_fn, args.steps, args.batch_chunk or None)
    ours = np.asarray(ig(params, ids, mask)["attributions"])
    theirs = torch_integrated_gradients(torch_model, torch_ids, args.steps).numpy()
    vectorised, loop, captum_style = median_seconds(
      [
        lambda: ig(params, ids, mask)["attributions"],
        lambda: integrated_gradients_loop(embed_fn, logits_fn, params, ids, mask, steps=args.steps)[
          "attributions"
        ],
        lambda: torch_integrated_gradients(torch_model, torch_ids, args.steps),
      ],
      args.repeats,
    )
    n = ids.shape[0]
    print(
      f"{name:5s} vectorised {n / vectorised:8.1f} ex/s ({vectorised * 1e3:8.1f} ms/batch)   "
      f"loop {n / loop:8.1f} ex/s   torch captum-style {n / captum_style:8.1f} ex/s   "
      f"speed-up x{loop / vectorised:.2f} vs loop, x{captum_style / vectorised:.2f} vs torch   "
      f"max |ours - torch| {np.abs(ours - theirs).max():.1e}"
    )


if __name__ == "__main__":
  main()
