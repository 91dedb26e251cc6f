"""Run a fixed set of tiny pipeline runs and write what they produced, minus timings, to one JSON.

A refactor that claims no behaviour change (issue 21) runs this before and after and diffs the two
files: every results.json, metrics.jsonl and adversarial/attack record of the runs must agree.

  python studies/behaviour_snapshot.py --out /tmp/before.json [--only trec_cnn_flat]
  python studies/behaviour_snapshot.py --compare /tmp/before.json /tmp/after.json
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

_TINY_TRANSFORMER = [
  "--config.data.train_limit=48",
  "--config.data.test_limit=24",
  "--config.data.max_length=32",
  "--config.train.epochs=1",
  "--config.train.eval_batch_size=32",
  "--config.model.from_scratch=True",
  "--config.model.scratch_hidden=32",
  "--config.model.scratch_layers=1",
  "--config.model.scratch_heads=2",
  "--config.model.scratch_intermediate=64",
]

# name -> the CLI overrides; the same settings as tests/test_pipeline*.py, each family and mode once.
RUNS = {
  "trec_cnn_flat": [
    "configs/trec_cnn.py",
    "--config.mode=flat",
    "--config.rounds=1",
    "--config.data.train_limit=300",
    "--config.attack.num_examples=16",
    "--config.train.epochs=3",
    "--config.eval.num_examples=8",
  ],
  "trec_cnn_flat_authors": [
    "configs/trec_cnn.py",
    "--config.mode=flat",
    "--config.protocol=authors",
    "--config.stage=train",
    "--config.data.train_limit=300",
    "--config.attack.num_examples=12",
    "--config.train.epochs=2",
  ],
  "sst2_lstm_adv": [
    "configs/sst2_lstm.py",
    "--config.mode=adv",
    "--config.rounds=1",
    "--config.data.train_limit=300",
    "--config.data.test_limit=40",
    "--config.attack.num_examples=12",
    "--config.train.epochs=2",
    "--config.eval.num_examples=8",
    '--config.eval.attacks=("pwws",)',
  ],
  "trec_cnn_freelb": [
    "configs/trec_cnn.py",
    "--config.mode=freelb",
    "--config.rounds=0",
    "--config.stage=train",
    "--config.data.train_limit=300",
    "--config.train.epochs=2",
    "--config.embedding_adversary.steps=2",
  ],
  "sst2_bert_flat": [
    "configs/sst2_bert.py",
    *_TINY_TRANSFORMER,
    "--config.mode=flat",
    "--config.rounds=1",
    "--config.attack.num_examples=12",
    "--config.eval.num_examples=12",
    "--config.eval.ig_steps=4",
  ],
  "sst2_deberta_pgd": [
    "configs/sst2_deberta.py",
    *_TINY_TRANSFORMER,
    "--config.stage=train",
    "--config.mode=pgd",
    "--config.rounds=0",
    "--config.embedding_adversary.steps=2",
  ],
}

_TIMING_KEYS = {"timings_s", "examples_per_s", "epoch_seconds", "wall_s", "seconds", "elapsed_s"}


def _strip(value):
  """Drops timing fields and absolute paths (they name the temporary workdir)."""
  if isinstance(value, dict):
    return {k: _strip(v) for k, v in value.items() if k not in _TIMING_KEYS}
  if isinstance(value, list):
    return [_strip(v) for v in value]
  if isinstance(value, str) and ("/tmp" in value or value.startswith("/")):
    return "<path>"
  return value


def _jsonl(path):
  return [_strip(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def snapshot(workdir: pathlib.Path) -> dict:
  out = {"results": _strip(json.loads((workdir / "results.json").read_text()))}
  if (workdir / "metrics.jsonl").exists():
    out["metrics"] = _jsonl(workdir / "metrics.jsonl")
  for folder in ("adversarial", "attacks"):
    for path in sorted((workdir / folder).glob("*.jsonl")) if (workdir / folder).exists() else ():
      out[f"{folder}/{path.name}"] = _jsonl(path)
  return out


def run_all(names) -> dict:
  snapshots = {}
  with tempfile.TemporaryDirectory() as tmp:
    for name in names:
      config, *overrides = RUNS[name]
      workdir = pathlib.Path(tmp) / name
      start = time.time()
      done = subprocess.run(
        [
          sys.executable,
          "-m",
          "flat_jax.main",
          "--config",
          config,
          "--workdir",
          str(workdir),
          *overrides,
        ],
        capture_output=True,
        text=True,
      )
      if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
      snapshots[name] = snapshot(workdir)
      print(f"{name}: {time.time() - start:.0f} s", flush=True)
  return snapshots


def _differences(a, b, where=""):
  if type(a) is not type(b):
    return [f"{where}: {a!r} != {b!r}"]
  if isinstance(a, dict):
    found = [f"{where}.{k}: only in one" for k in sorted(set(a) ^ set(b))]
    for k in sorted(set(a) & set(b)):
      found += _differences(a[k], b[k], f"{where}.{k}")
    return found
  if isinstance(a, list):
    if len(a) != len(b):
      return [f"{where}: {len(a)} != {len(b)} items"]
    return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
  return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def main():
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--out", type=pathlib.Path)
  parser.add_argument("--only", default=",".join(RUNS))
  parser.add_argument("--compare", nargs=2, type=pathlib.Path)
  args = parser.parse_args()
  if args.compare:
    before, after = (json.loads(p.read_text()) for p in args.compare)
    found = _differences(before, after)
    print("\n".join(found[:50]) or "identical")
    print(f"{len(found)} differences over runs {sorted(before)}")
    raise SystemExit(1 if found else 0)
  args.out.write_text(json.dumps(run_all(args.only.split(",")), indent=1, sort_keys=True))


if __name__ == "__main__":
  main()
