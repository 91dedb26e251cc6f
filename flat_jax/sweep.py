"""Grids of runs (e.g. beta x gamma), each an ordinary resumable workdir, selected on dev robustness.

  python -m flat_jax.sweep --config CONFIG --workdir DIR --grid flat.beta=1e-4,1e-3,1e-2 \
      --grid flat.gamma=1e-3,1e-1 [--dev_examples 300] [--parallel 2] [--shard I/N] [--config.k=v ...]

Each grid point is `python -m flat_jax.main --config CONFIG --workdir DIR/<point>` with the point's
settings, the extra `--config.k=v` flags, `--config.stage=train` (no test set is touched) and
`--config.eval.dev_examples=N`: after training, the point's model is attacked with attack.recipe on
a seeded sample of N dev examples. The chosen point has the highest after-attack accuracy on that
sample; standard accuracy on dev breaks ties. A grid over `seed` is averaged: points that differ
only in their seed are one setting, scored by their mean.

Points that differ only in FLAT's own settings (FLAT_ONLY_KEYS, our schedule) share the base stage
and the round-1 attack of the first finished point: its checkpoints and records are copied into a
new point, which then resumes past them (the same seed and code compute them bit for bit).

Kill-safe like a single run: re-running the same command skips finished points and resumes the
unfinished ones where they stopped. Points run `--parallel` at a time on this host (one point per
worker process); over several hosts, give each `--shard I/N` (point i runs on shard i mod N, e.g. a
SLURM array task each) and run once more without --shard, or with --select_only, to collect.
DIR/sweep.json and DIR/sweep.md hold every point's figures and name the chosen one.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import pathlib
import subprocess
import sys
import time
from typing import Sequence

from absl import app, flags

from flat_jax import config as config_lib

FLAGS = flags.FLAGS
# Settings more than this many points of dev accuracy below the grid's best are not chosen.
MAX_ACCURACY_DROP = 3.0
flags.DEFINE_string(
  "config",
  None,
  "Config of every point: a preset name (sst2_cnn) or a config "
  "file (configs/<dataset>_<model>.py).",
)
flags.DEFINE_string("workdir", None, "Directory of the sweep: one workdir per point under it.")
flags.DEFINE_multi_string(
  "grid", [], "KEY=V1,V2,...: a config key and its values (repeatable; the grid is the product)."
)
flags.DEFINE_integer("dev_examples", 300, "Dev examples attacked per point for the selection.")
flags.DEFINE_integer("parallel", 1, "Points run at once on this host (one process each).")
flags.DEFINE_string("shard", "", "I/N: run only the points i with i %% N == I (several hosts).")
flags.DEFINE_bool("select_only", False, "Run nothing; collect the finished points and select.")
flags.DEFINE_float(
  "max_accuracy_drop",
  MAX_ACCURACY_DROP,
  "Points whose dev accuracy is more than "
  "this below the best point's are not chosen (a collapsed model looks robust).",
)


# Settings that change neither the base stage nor the attack on the base model (round 1) when the
# schedule is ours (a mask-free base stage): points that differ only in these share that prefix.
FLAT_ONLY_KEYS = frozenset(
  {
    "flat.beta",
    "flat.gamma",
    "flat.entropy_reduction",
    "flat.importance_positions",
    "flat.learning_rate",
    "train.round_epochs",
  }
)


class SweepError(ValueError):
  """A bad grid or flag; the message names it."""


@dataclasses.dataclass(frozen=True)
class Point:
  index: int
  settings: tuple[tuple[str, str], ...]  # (config key, value as given on the command line)

  @property
  def name(self) -> str:
    return "_".join(f"{key.split('.')[-1]}={value}" for key, value in self.settings) or "default"

  def flags(self) -> list[str]:
    return [f"--config.{key}={value}" for key, value in self.settings]


def parse_grid(specs: Sequence[str]) -> list[tuple[str, list[str]]]:
  """'flat.beta=0.1,1' -> ('flat.beta', ['0.1', '1']); keys must exist in the config schema."""
  schema = {key for key, _ in config_lib._flatten(config_lib.base_config())}
  grid, seen = [], set()
  for spec in specs:
    key, sep, values = spec.partition("=")
    key = key.strip().removeprefix("config.")
    if not sep or not values.strip():
      raise SweepError(f"--grid {spec!r}: expected KEY=V1,V2,...")
    if key not in schema:
      close = [k for k in schema if k.split(".")[-1] == key.split(".")[-1]]
      raise SweepError(
        f"--grid {spec!r}: unknown config key '{key}'"
        + (f" (did you mean {close[0]}?)" if close else "")
      )
    if key in seen:
      raise SweepError(f"--grid: '{key}' given twice")
    if key in ("stage", "overwrite", "eval.dev_examples"):
      raise SweepError(f"--grid: '{key}' is set by the sweep itself")
    seen.add(key)
    grid.append((key, [v.strip() for v in values.split(",") if v.strip()]))
  return grid


def grid_points(grid: list[tuple[str, list[str]]]) -> list[Point]:
  keys = [key for key, _ in grid]
  return [
    Point(i, tuple(zip(keys, values)))
    for i, values in enumerate(itertools.product(*(values for _, values in grid)))
  ]


def point_command(
  point: Point,
  config_path: str,
  workdir: pathlib.Path,
  dev_examples: int,
  extra: Sequence[str],
  evaluate_only: bool = False,
) -> list[str]:
  """The point's run: training + the dev attack, or (evaluate_only: a trained point whose dev
  attack predates the calibrated temperature) the dev attack alone."""
  stage = (
    ["--config.stage=evaluate", "--config.eval.attacks=()"]
    if evaluate_only
    else ["--config.stage=train"]
  )
  return [
    sys.executable,
    "-m",
    "flat_jax.main",
    "--config",
    config_path,
    "--workdir",
    str(workdir / point.name),
    *extra,
    *point.flags(),
    *stage,
    f"--config.eval.dev_examples={dev_examples}",
  ]


def _point_results(workdir: pathlib.Path, point: Point) -> dict:
  path = workdir / point.name / "results.json"
  if not path.exists():
    return {}
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError:
    return {}


def _summary(workdir: pathlib.Path, point: Point) -> dict:
  results = _point_results(workdir, point)
  row = {
    "point": point.name,
    "settings": dict(point.settings),
    "workdir": str(workdir / point.name),
    "status": results.get("status", "not started"),
  }
  dev_attack = next(iter(results.get("dev_after_attack", {}).values()), None)
  # a dev attack without a temperature predates the calibrated attacks (it queried at T = 1): it is
  # not compared with the others, the point is attacked again (point_command's evaluate_only)
  if (
    results.get("status") in ("trained", "finished") and dev_attack and "temperature" in dev_attack
  ):
    row.update(
      dev_accuracy=results["dev_accuracy"],
      dev_after_attack=dev_attack["accuracy"],
      dev_attacked=dev_attack["num_examples"],
      dev_success_rate=dev_attack["success_rate"],
      dev_temperature=dev_attack["temperature"],
    )
  return row


def _progress(point_dir: pathlib.Path) -> str:
  """Where a running point is: its last epoch line, or how many examples its newest attack holds."""
  attacks = sorted(
    list(point_dir.glob("adversarial/*.jsonl")) + list(point_dir.glob("attacks/*.jsonl")),
    key=lambda p: p.stat().st_mtime,
  )
  metrics = point_dir / "metrics.jsonl"
  newest_metrics = metrics.stat().st_mtime if metrics.exists() else 0.0
  if attacks and attacks[-1].stat().st_mtime > newest_metrics:
    return f"{attacks[-1].stem}: {len(attacks[-1].read_text().splitlines())} attacked"
  if metrics.exists() and (lines := metrics.read_text().splitlines()):
    last = json.loads(lines[-1])
    return f"{last['stage']} epoch {last['epoch']}"
  return "starting"


def select(rows: list[dict], max_accuracy_drop: float = MAX_ACCURACY_DROP) -> dict | None:
  """The best setting: highest mean dev after-attack accuracy over its seeds, then dev accuracy,
  among the settings whose mean dev accuracy is within `max_accuracy_drop` points of the best one's.
  (A model that predicts one class is 'robust' at the majority rate: without the floor, a
  collapsed point wins.)"""
  settings = {}
  for row in rows:
    if "dev_after_attack" not in row:
      continue
    key = tuple(sorted((k, v) for k, v in row["settings"].items() if k != "seed"))
    settings.setdefault(key, []).append(row)
  if not settings:
    return None

  def score(item):
    members = item[1]
    return (
      sum(r["dev_after_attack"] for r in members) / len(members),
      sum(r["dev_accuracy"] for r in members) / len(members),
    )

  best_accuracy = max(score(item)[1] for item in settings.items())
  eligible = {
    k: v for k, v in settings.items() if score((k, v))[1] >= best_accuracy - max_accuracy_drop
  }
  key, members = max(eligible.items(), key=score)
  mean_aa, mean_acc = score((key, members))
  return {
    "settings": dict(key),
    "points": [r["point"] for r in members],
    "seeds": len(members),
    "dev_after_attack": mean_aa,
    "dev_accuracy": mean_acc,
    "accuracy_floor": best_accuracy - max_accuracy_drop,
  }


def write_summary(
  workdir: pathlib.Path,
  grid,
  points: list[Point],
  dev_examples: int,
  max_accuracy_drop: float = MAX_ACCURACY_DROP,
) -> dict:
  rows = [_summary(workdir, p) for p in points]
  chosen = select(rows, max_accuracy_drop)
  summary = {
    "grid": {k: v for k, v in grid},
    "dev_examples": dev_examples,
    "points": rows,
    "chosen": chosen,
    "complete": all("dev_after_attack" in r for r in rows),
  }
  _write_atomic(workdir / "sweep.json", json.dumps(summary, indent=2))
  _write_atomic(workdir / "sweep.md", render_markdown(summary))
  return summary


def render_markdown(summary: dict) -> str:
  keys = list(summary["grid"])
  floor = (summary["chosen"] or {}).get("accuracy_floor")
  lines = [
    f"Sweep: after-attack accuracy on {summary['dev_examples']} seeded dev examples "
    "(selection), dev accuracy (tie-break); percent."
    + (
      f" Points below dev accuracy {floor:.2f} (the best minus the allowed drop) are not chosen."
      if floor is not None
      else ""
    ),
    "",
    "| " + " | ".join(keys) + " | status | dev AA | dev acc | attack T |",
    "|" + "---|" * (len(keys) + 4),
  ]
  chosen = set((summary["chosen"] or {}).get("points", []))
  for row in summary["points"]:
    mark = (
      " **chosen**"
      if row["point"] in chosen
      else (
        " (below the accuracy floor)"
        if floor is not None and row.get("dev_accuracy", 100.0) < floor
        else ""
      )
    )
    figures = (
      f"{row['dev_after_attack']:.2f} | {row['dev_accuracy']:.2f} | {row['dev_temperature']:g}"
      if "dev_after_attack" in row
      else "- | - | -"
    )
    lines.append(
      "| "
      + " | ".join(str(row["settings"][k]) for k in keys)
      + f" | {row['status']}{mark} | {figures} |"
    )
  if summary["chosen"]:
    c = summary["chosen"]
    lines += [
      "",
      "Chosen: "
      + ", ".join(f"{k}={v}" for k, v in c["settings"].items())
      + f" (dev AA {c['dev_after_attack']:.2f}, dev accuracy {c['dev_accuracy']:.2f}, "
      f"{c['seeds']} seed(s))",
    ]
  return "\n".join(lines) + "\n"


def _write_atomic(path: pathlib.Path, text: str) -> None:
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(text, encoding="utf-8")
  os.replace(tmp, path)


def shares_base(grid, extra: Sequence[str]) -> bool:
  """Whether the points can share the base stage and round 1's attack: the grid varies only
  FLAT_ONLY_KEYS and the run is not on the continuous schedule (whose first stage is FLAT's)."""
  continuous = any(
    a.partition("=")[0] in ("--config.train.continuous", "--config.protocol")
    and (a.partition("=")[2] or "true").strip().lower() in ("true", "1", "authors")
    for a in extra
  )
  return not continuous and all(key in FLAT_ONLY_KEYS for key, _ in grid)


def seed_from(donor: pathlib.Path, point_dir: pathlib.Path) -> bool:
  """Copies a finished point's base stage (checkpoints, metrics lines) and round-1 attack records
  into a point that has not started: the same seed and code compute them bit for bit, so the point
  resumes past them. Returns whether it did."""
  import shutil

  base = donor / "checkpoints" / "train_base"
  records = donor / "adversarial" / "round_1.jsonl"
  if point_dir.exists() or not (base / "best").is_dir() or not records.is_file():
    return False
  staging = point_dir.with_name(point_dir.name + ".seeding")
  shutil.rmtree(staging, ignore_errors=True)
  shutil.copytree(base, staging / "checkpoints" / "train_base")
  (staging / "adversarial").mkdir()
  shutil.copy2(records, staging / "adversarial" / "round_1.jsonl")
  lines = [
    l
    for l in (donor / "metrics.jsonl").read_text().splitlines()
    if json.loads(l).get("stage") == "train_base"
  ]
  (staging / "metrics.jsonl").write_text("".join(l + "\n" for l in lines))
  os.replace(staging, point_dir)  # all or nothing: a kill while copying leaves no half point
  return True


def _parse_shard(spec: str) -> tuple[int, int]:
  if not spec:
    return 0, 1
  try:
    index, count = (int(x) for x in spec.split("/"))
  except ValueError:
    raise SweepError(f"--shard {spec!r}: expected I/N, e.g. 0/4") from None
  if not 0 <= index < count:
    raise SweepError(f"--shard {spec!r}: I must be in 0..N-1")
  return index, count


def run_sweep(
  config_path: str,
  workdir,
  grid_specs: Sequence[str],
  extra: Sequence[str],
  *,
  dev_examples: int = 300,
  parallel: int = 1,
  shard: str = "",
  select_only: bool = False,
  max_accuracy_drop: float = MAX_ACCURACY_DROP,
) -> dict:
  workdir = pathlib.Path(workdir)
  grid = parse_grid(grid_specs)
  if not grid:
    raise SweepError("no --grid given")
  if dev_examples <= 0 or parallel <= 0:
    raise SweepError("--dev_examples and --parallel must be > 0")
  try:
    config_path = config_lib.config_file(config_path)  # a preset name or a file
  except config_lib.ConfigError as e:
    raise SweepError(str(e)) from None
  shard_index, shard_count = _parse_shard(shard)
  points = grid_points(grid)
  workdir.mkdir(parents=True, exist_ok=True)
  mine = [p for p in points if p.index % shard_count == shard_index]
  todo = [] if select_only else [p for p in mine if "dev_after_attack" not in _summary(workdir, p)]
  logging.info(
    "sweep %s: %d points, %d here, %d to run, %d at a time",
    workdir,
    len(points),
    len(mine),
    len(todo),
    parallel,
  )
  running: dict[Point, subprocess.Popen] = {}
  failed = []
  share = shares_base(grid, extra)
  started = last_report = time.time()
  report_every = 60.0
  done = len(mine) - len(todo)
  while todo or running:
    while todo and len(running) < parallel:
      point = todo.pop(0)
      donor = next(
        (
          workdir / p.name
          for p in points
          if p not in running and p != point and "dev_after_attack" in _summary(workdir, p)
        ),
        None,
      )
      if share and donor is not None and seed_from(donor, workdir / point.name):
        logging.info(
          "[sweep] %s starts from %s's base stage and round-1 attack", point.name, donor.name
        )
      log = open(workdir / f"{point.name}.log", "ab")
      logging.info("[sweep] start %s (%d/%d)", point.name, point.index + 1, len(points))
      trained = _summary(workdir, point)["status"] in ("trained", "finished")
      running[point] = subprocess.Popen(
        point_command(point, config_path, workdir, dev_examples, extra, evaluate_only=trained),
        stdout=log,
        stderr=subprocess.STDOUT,
      )
      log.close()
    time.sleep(1.0)
    if time.time() - last_report > report_every:
      last_report = time.time()
      logging.info(
        "[sweep] %d/%d points done, %.0f s; running: %s",
        done,
        len(mine),
        time.time() - started,
        "; ".join(f"{p.name} ({_progress(workdir / p.name)})" for p in running) or "none",
      )
    for point, proc in list(running.items()):
      if proc.poll() is None:
        continue
      del running[point]
      done += 1
      row = _summary(workdir, point)
      if proc.returncode != 0:
        failed.append(point.name)
        logging.error(
          "[sweep] %s failed (exit %d): see %s",
          point.name,
          proc.returncode,
          workdir / f"{point.name}.log",
        )
      else:
        logging.info(
          "[sweep] %s done: dev AA %.2f, dev accuracy %.2f (%d/%d points, %.0f s)",
          point.name,
          row.get("dev_after_attack", float("nan")),
          row.get("dev_accuracy", float("nan")),
          done,
          len(mine),
          time.time() - started,
        )
      write_summary(workdir, grid, points, dev_examples, max_accuracy_drop)
  summary = write_summary(workdir, grid, points, dev_examples, max_accuracy_drop)
  if summary["chosen"]:
    logging.info(
      "[sweep] chosen: %s (dev AA %.2f)%s",
      summary["chosen"]["settings"],
      summary["chosen"]["dev_after_attack"],
      "" if summary["complete"] else " among the points finished so far",
    )
  if failed:
    raise SweepError(f"{len(failed)} point(s) failed: {', '.join(failed)}")
  return summary


def main(argv):
  extra = [a for a in argv[1:] if a.startswith("--config.")]
  unknown = [a for a in argv[1:] if not a.startswith("--config.")]
  if unknown:
    raise app.UsageError(f"unexpected arguments: {' '.join(unknown)}")
  try:
    summary = run_sweep(
      FLAGS.config,
      FLAGS.workdir,
      FLAGS.grid,
      extra,
      dev_examples=FLAGS.dev_examples,
      parallel=FLAGS.parallel,
      shard=FLAGS.shard,
      select_only=FLAGS.select_only,
      max_accuracy_drop=FLAGS.max_accuracy_drop,
    )
  except SweepError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(render_markdown(summary), end="")


def _parse_flags(argv: list[str]) -> list[str]:
  """absl parses the sweep's own flags; the --config.k=v flags belong to the points and are passed
  on untouched (absl would reject them as unknown)."""
  FLAGS([a for a in argv if not a.startswith("--config.")])
  return [argv[0]] + [a for a in argv[1:] if a.startswith("--config.")]


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main, flags_parser=_parse_flags)
