"""Integrated Gradients examples per second: the vectorised jitted path (all steps x batch points in
one gradient call) against a Python loop of one jitted jax.grad call per path point.

  .venv/bin/python benchmarks/ig_throughput.py [--batch 32] [--steps 50] [--repeats 5] [--with-mask]

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

from flat_jax.config import preset
from flat_jax.data.datasets import SHARED_DATA
from flat_jax.data.vocab import PAD_ID, Vocab
from flat_jax.interpret.ig import integrated_gradients_loop, make_integrated_gradients
from flat_jax.models.classifier import build_word_classifier, with_embedding

MAX_LENGTH = 50


def sst2_batch(batch: int):
  with gzip.open(SHARED_DATA / "sst2" / "test.jsonl.gz", "rt", encoding="utf-8") as f:
    texts = [json.loads(line)["text"] for _, line in zip(range(batch), f)]
  vocab = Vocab.build(texts)
  ids, _ = vocab.encode_batch(texts, MAX_LENGTH)
  return len(vocab), jnp.asarray(ids), jnp.asarray(ids != PAD_ID)


def model_fns(name: str, vocab_size: int, embed_dim: int, with_mask: bool):
  model = build_word_classifier(preset("sst2", name).model, vocab_size, 2, embed_dim,
                                with_mask=with_mask)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, MAX_LENGTH), jnp.int32))["params"]
  matrix = np.random.RandomState(0).normal(size=(vocab_size, embed_dim)).astype(np.float32)
  params = with_embedding(params, matrix)
  embed_fn = lambda p, ids: model.apply({"params": p}, ids, method=model.embed_tokens)
  logits_fn = lambda p, e, ids, m: model.apply({"params": p}, e, m, deterministic=True,
                                               method=model.classify_embedded)["logits"]
  return params, embed_fn, logits_fn


def median_seconds(fns, repeats: int) -> list[float]:
  """Median wall time of each fn; the fns take turns in every repeat, so a change in machine load
  hits all of them alike."""
  for fn in fns:
    jax.block_until_ready(fn())        # warm-up: compilation
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
  args = parser.parse_args()

  vocab_size, ids, mask = sst2_batch(args.batch)
  print(f"device {jax.devices()[0].device_kind} ({jax.default_backend()}), batch {ids.shape[0]}, "
        f"length {MAX_LENGTH}, steps {args.steps}, word mask {args.with_mask}, "
        f"median of {args.repeats}")
  for name in args.models.split(","):
    params, embed_fn, logits_fn = model_fns(name, vocab_size, args.embed_dim, args.with_mask)
    ig = make_integrated_gradients(embed_fn, logits_fn, args.steps, args.batch_chunk or None)
    vectorised, loop = median_seconds([
        lambda: ig(params, ids, mask)["attributions"],
        lambda: integrated_gradients_loop(embed_fn, logits_fn, params, ids, mask,
                                          steps=args.steps)["attributions"]], args.repeats)
    n = ids.shape[0]
    print(f"{name:5s} vectorised {n / vectorised:8.1f} ex/s ({vectorised * 1e3:8.1f} ms/batch)   "
          f"loop {n / loop:8.1f} ex/s ({loop * 1e3:8.1f} ms/batch)   speed-up x{loop / vectorised:.2f}")


if __name__ == "__main__":
  main()
