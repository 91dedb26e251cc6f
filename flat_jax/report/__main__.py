"""python -m flat_jax.report DIR [DIR ...] [--out FILE]: the paper's tables from run directories."""
from __future__ import annotations

import argparse
import pathlib
import sys

from flat_jax.report.tables import load_runs, render


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m flat_jax.report", description=__doc__)
  parser.add_argument("runs", nargs="+", help="workdirs or results.json files")
  parser.add_argument("--out", help="write the markdown here instead of printing it")
  args = parser.parse_args(argv)
  try:
    runs = load_runs(args.runs)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  text = render(runs)
  if args.out:
    pathlib.Path(args.out).write_text(text, encoding="utf-8")
  else:
    print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
