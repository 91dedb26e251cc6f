"""The collective operations of the compiled data-parallel train step, from its optimized HLO.

  .venv/bin/python benchmarks/collectives.py [--devices 4] [--models cnn,lstm,bert] [--json]

On simulated CPU devices a steps-per-second scaling curve says nothing (the devices share the same
cores); what data parallelism costs beyond the single-device step is its communication, and that
is fixed by the program: this prints every collective XLA emitted, with its operand shapes, so one
can check that a step does one all-reduce of the gradients and nothing more. Small shapes (the
program's communication does not depend on the batch or the length).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "collective-permute", "all-to-all")
# "%name = TYPE op(" with TYPE a shape or a tuple of shapes; async pairs count once, at their start
_INSTRUCTION = re.compile(
  r"^\s*(?:ROOT\s+)?%[\w.\-]+\s*=\s*(.+?)\s+(" + "|".join(COLLECTIVES) + r")(?:-start)?\("
)
_SHAPE = re.compile(r"\b([a-z]+\d*)\[([\d,]*)\]")


def collectives(hlo_text: str) -> list[dict]:
  """Every collective instruction: {"op", "shapes": [(dtype, dims), ...]} (a tuple operand lists
  all its parts; XLA's combiner packs many small all-reduces into one such tuple)."""
  found = []
  for line in hlo_text.splitlines():
    match = _INSTRUCTION.match(line)
    if match:
      shapes = [
        (dtype, tuple(int(d) for d in dims.split(",") if d))
        for dtype, dims in _SHAPE.findall(match.group(1))
      ]
      found.append({"op": match.group(2), "shapes": shapes})
  return found


def trainable_shapes(params, frozen_prefix=None) -> list[tuple]:
  import jax

  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return [
    tuple(leaf.shape)
    for path, leaf in flat
    if frozen_prefix is None or getattr(path[0], "key", None) != frozen_prefix
  ]


def step_collectives(model: str, devices) -> dict:
  """Compiles flat_jax's FLAT train step for `model` over `devices` and lists its collectives."""
  import numpy as np
  import train_step as bench

  vocab_size = 300 if model == "bert" else 100
  pair = bench.ref.build_pair(
    model,
    "flat",
    vocab_size=vocab_size,
    embed_dim=16,
    with_torch=False,
    bert_overrides=dict(
      num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128
    ),
  )
  batch_size, length = 2 * len(devices), 12
  rng = np.random.default_rng(0)
  ids = rng.integers(2, vocab_size, (batch_size, length)).astype(np.int32)
  adv_ids = ids.copy()
  adv_ids[:, 3] = 1
  rows = {
    "ids": ids,
    "adv_ids": adv_ids,
    "has_adv": np.ones(batch_size, bool),
    "replaced": ids != adv_ids,
    "label": np.zeros(batch_size, np.int32),
    "weight": np.ones(batch_size, np.float32),
    "index": np.arange(batch_size, dtype=np.int32),
  }
  compiled, state, _ = bench.jax_step(pair, "flat", rows, devices)
  frozen = "embed" if model != "bert" else None  # CNN/LSTM word vectors are frozen
  return {
    "model": model,
    "devices": len(devices),
    "collectives": collectives(compiled.as_text()),
    "trainable": trainable_shapes(state.params, frozen),
    "frozen": [
      s for s in trainable_shapes(state.params) if s not in trainable_shapes(state.params, frozen)
    ],
  }


def describe(result: dict) -> str:
  lines = [
    f"{result['model']} on {result['devices']} device(s): {len(result['collectives'])} collective(s); "
    f"{len(result['trainable'])} trainable parameter arrays"
  ]
  for c in result["collectives"]:
    sizes = [int(np_prod(dims)) for _, dims in c["shapes"]]
    lines.append(
      f"  {c['op']}: {len(c['shapes'])} operand(s), {sum(sizes)} values "
      f"({', '.join(f'{t}{list(d)}' for t, d in c['shapes'][:6])}{' ...' if len(c['shapes']) > 6 else ''})"
    )
  return "\n".join(lines)


def np_prod(dims) -> int:
  out = 1
  for d in dims:
    out *= d
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--devices", type=int, default=4, help="simulated CPU devices")
  parser.add_argument("--models", default="cnn,lstm,bert")
  parser.add_argument("--json", action="store_true", help="print JSON instead of text")
  args = parser.parse_args(argv)
  # before jax is imported: the CPU client reads it once
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.devices}"
  ).strip()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import jax

  devices = jax.devices("cpu")[: args.devices]
  if len(devices) != args.devices:
    raise SystemExit(
      f"asked for {args.devices} devices, JAX has {len(devices)} (was jax imported first?)"
    )
  results = [step_collectives(m, devices) for m in args.models.split(",")]
  if args.json:
    print(json.dumps(results))
  else:
    print("\n".join(describe(r) for r in results))


if __name__ == "__main__":
  main()
