"""FLAT train steps over an adversarial round's batches: every row forwarded as (original, twin),
as the authors pair clean examples with themselves, against the twin-less rows forwarded once
(flat_jax.data.batching.split_twins, the pipeline's default `train.pack_twins`). The same loss
(tests/training/test_twin_packing.py); the benchmark measures what it saves, and sets both beside
the PyTorch reference (benchmarks/reference_torch.py, the same weights) run as the authors' design
runs a round: every row a pair. torch gets as many threads as JAX uses (every core).

  .venv/bin/python benchmarks/twin_packing.py [--models cnn,lstm] [--twin-share 0.23] [--repeats 3]

The default share is SST-2's first FLAT round here: 1,608 of 6,920 training rows got a twin
(results/sst2_cnn_flat). Examples/s counts training rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import numpy as np
import torch

from flat_jax.training.objectives import make_objective, replaced_positions
from flat_jax.training.state import TrainState, make_optimizer
from flat_jax.training.loop import place_batch
from flat_jax.training.step import make_mesh, make_train_step

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_torch as ref  # noqa: E402
from train_step import train_config  # noqa: E402


def round_batches(
  num_batches: int, batch_size: int, length: int, vocab: int, share: float, seed: int
):
  """Batches shaped like a FLAT round's: texts of 5..length words, a `share` of rows with a twin
  that differs in two words."""
  rs = np.random.RandomState(seed)
  out = []
  for b in range(num_batches):
    lengths = rs.randint(5, length + 1, batch_size)
    ids = np.where(
      np.arange(length) < lengths[:, None], rs.randint(2, vocab, (batch_size, length)), 0
    )
    adv_ids = ids.copy()
    has_adv = rs.rand(batch_size) < share
    for row in np.flatnonzero(has_adv):
      adv_ids[row, rs.choice(lengths[row], 2, replace=False)] = rs.randint(2, vocab, 2)
    out.append(
      {
        "ids": ids.astype(np.int32),
        "adv_ids": adv_ids.astype(np.int32),
        "label": rs.randint(0, 2, batch_size).astype(np.int32),
        "weight": np.ones(batch_size, np.float32),
        "index": np.arange(b * batch_size, (b + 1) * batch_size, dtype=np.int32),
        "has_adv": has_adv,
        "replaced": np.asarray(replaced_positions(ids, adv_ids)) & has_adv[:, None],
      }
    )
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", default="cnn,lstm")
  parser.add_argument("--twin-share", type=float, default=0.23)
  parser.add_argument("--batches", type=int, default=12)
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--length", type=int, default=50)
  parser.add_argument("--embed-dim", type=int, default=300)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()

  mesh = make_mesh()
  batches = round_batches(args.batches, args.batch_size, args.length, 5000, args.twin_share, 0)
  whole = [place_batch(b, mesh, None, pack_twins=False) for b in batches]
  packed = [place_batch(b, mesh, None, pack_twins=True) for b in batches]  # as training packs
  texts = lambda bs: sum(
    2 * len(p["weight"]) if "has_adv" in p else len(p["weight"])
    for b in bs
    for p in ([b] if "ids" in b else b.values())
  )
  print(
    f"{args.batches} batches of {args.batch_size} rows x length {args.length}, twin share "
    f"{args.twin_share:.2f}: {texts(whole)} texts forwarded as pairs, {texts(packed)} packed; "
    f"{mesh.size} device(s), JAX {jax.__version__}"
  )
  print(
    "| model | PyTorch pairs ex/s | flat_jax pairs ex/s | flat_jax packed ex/s | packed / pairs "
    "| packed / PyTorch |"
  )
  print("|---|---|---|---|---|---|")
  torch.set_num_threads(os.cpu_count())
  for name in args.models.split(","):
    c, train = train_config(name, "flat")  # FLAT's learning rate, as train_step.py's steps
    pair = ref.build_pair(name, "flat", vocab_size=5000, embed_dim=args.embed_dim)
    step = make_train_step(pair.apply_fn, make_objective("flat", c.flat.beta, c.flat.gamma), mesh)
    state = TrainState.create(
      apply_fn=pair.apply_fn,
      params=pair.params,
      seed=0,
      tx=make_optimizer(train, pair.params, freeze_embeddings=True),
    )
    torch_model = pair.torch_model.train()
    torch_params = [p for p in torch_model.parameters() if p.requires_grad]
    torch_batches = [ref.torch_batch(b) for b in batches]

    def jax_epoch(stream):
      s = state
      start = time.perf_counter()
      for b in stream:
        s, m = step(s, b)
      jax.block_until_ready(m)
      return time.perf_counter() - start

    def torch_epoch():
      opt = torch.optim.Adam(torch_params, lr=train.learning_rate)
      start = time.perf_counter()
      for b in torch_batches:
        opt.zero_grad(set_to_none=True)
        loss = ref.objective_loss(
          "flat", ref.row_outputs(torch_model, b), b, c.flat.beta, c.flat.gamma
        )
        loss.backward()
        opt.step()
      return time.perf_counter() - start

    runs = {
      "torch": torch_epoch,
      "whole": lambda: jax_epoch(whole),
      "packed": lambda: jax_epoch(packed),
    }
    for run in runs.values():  # compile every shape, warm torch's allocator
      run()
    times = {k: [] for k in runs}
    for _ in range(args.repeats):  # interleaved
      for k, run in runs.items():
        times[k].append(run())
    rows = args.batches * args.batch_size
    t, w, p = (statistics.median(times[k]) for k in ("torch", "whole", "packed"))
    print(
      f"| {name} | {rows / t:.1f} | {rows / w:.1f} | {rows / p:.1f} | {w / p:.2f}x | {t / p:.2f}x |"
    )


if __name__ == "__main__":
  main()
