"""python -m flat_jax.report RUN [RUN ...] [--study] [--out FILE | --into FILE]: the paper's tables
from run directories (or their results.json files).

--into FILE replaces the block between the lines `<!-- tables:begin -->` and `<!-- tables:end -->`
of FILE (e.g. REPRODUCTION.md), so a document's prose stays and its tables are regenerated.
--study: instead of the paper's tables, the controlled comparison of settings seed by seed
(flat_jax/report/study.py; runs named <prefix>_<setting>_s<seed>), into the block between
`<!-- study:begin -->` and `<!-- study:end -->` (--block NAME: `<!-- NAME:begin -->` instead, for a
document with several such tables).

--common_set and --transfer (workdirs, whose attacks/test_<recipe>.jsonl they read): after-attack
accuracy on the test examples every compared model classifies correctly, and the transfer matrix
(each run's adversarial test texts read by every other run's model); --attacks picks the recipes
(default: those every run has records of). flat_jax/report/compare.py."""

from __future__ import annotations

import argparse
import pathlib
import sys

from flat_jax.report.study import render_study
from flat_jax.report.tables import load_runs, render


BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"


def replace_block(path: pathlib.Path, text: str, block: str = "tables") -> None:
  BEGIN, END = f"<!-- {block}:begin -->", f"<!-- {block}:end -->"
  document = path.read_text(encoding="utf-8")
  if (
    document.count(BEGIN) != 1
    or document.count(END) != 1
    or document.index(BEGIN) > document.index(END)
  ):
    raise ValueError(f"{path}: needs exactly one '{BEGIN}' line followed by one '{END}' line")
  head, rest = document.split(BEGIN)
  _, tail = rest.split(END)
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(f"{head}{BEGIN}\n{text.rstrip()}\n{END}{tail}", encoding="utf-8")
  tmp.replace(path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m flat_jax.report", description=__doc__)
  parser.add_argument("runs", nargs="+", help="workdirs or results.json files")
  target = parser.add_mutually_exclusive_group()
  target.add_argument("--out", help="write the markdown here instead of printing it")
  target.add_argument("--into", help="replace the marked tables block of this markdown file")
  target.add_argument("--html", help="write a page comparing the runs side by side here")
  parser.add_argument(
    "--study",
    action="store_true",
    help="the settings-by-seed comparison instead of the paper's tables",
  )
  parser.add_argument(
    "--block", help="with --into: the marked block's name (default: tables, or study with --study)"
  )
  parser.add_argument(
    "--common_set",
    action="store_true",
    help="after-attack accuracy on the examples every run classifies correctly",
  )
  parser.add_argument(
    "--transfer",
    action="store_true",
    help="the transfer matrix of the runs' adversarial test texts",
  )
  parser.add_argument(
    "--attacks",
    default="",
    help="comma-separated recipes for --common_set and "
    "--transfer (default: every recipe all runs were attacked with)",
  )
  args = parser.parse_args(argv)
  if args.block and not args.into:
    parser.error("--block names a block of the --into file; give --into too")
  try:
    runs = load_runs(args.runs)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if args.html:
    from flat_jax.report.html import write_compare_page

    print(write_compare_page(args.runs, args.html))
    return 0
  if args.common_set or args.transfer:
    text = _compare(args)
  else:
    text = render_study(runs) if args.study else render(runs)
  if args.into:
    try:
      replace_block(
        pathlib.Path(args.into), text, args.block or ("study" if args.study else "tables")
      )
    except (ValueError, OSError) as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
  elif args.out:
    pathlib.Path(args.out).write_text(text, encoding="utf-8")
  else:
    print(text)
  return 0


def _compare(args) -> str:
  from flat_jax.report import compare

  workdirs = [
    pathlib.Path(p).parent if pathlib.Path(p).is_file() else pathlib.Path(p) for p in args.runs
  ]
  if args.attacks:
    recipes = [r.strip() for r in args.attacks.split(",") if r.strip()]
  else:
    found = [
      {f.stem.removeprefix("test_") for f in (w / "attacks").glob("test_*.jsonl")} for w in workdirs
    ]
    recipes = sorted(set.intersection(*found)) if found else []
  parts = []
  if args.common_set:
    parts.append(compare.common_set_table(workdirs, recipes))
  if args.transfer:
    parts.append(compare.transfer_table(workdirs, recipes))
  return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
  sys.exit(main())
