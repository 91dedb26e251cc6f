"""Fault matrix: what flat_jax does when it is killed, its files are damaged, its disk is full or
read-only, or it is given bad input. One row per case on a tiny TREC slice (issue 22).

  python benchmarks/fault_matrix.py [--out DIR] [--only case1,case2]

Faults are real to the kernel: SIGKILL at a watched point, a small tmpfs for a full disk, a
read-only bind mount, an empty network namespace (the last three inside `unshare --map-root-user`,
which needs no privileges). A case is good when its run ends identical to an uninterrupted run
(results.json without the seconds, metrics.jsonl without the speeds, the adversarial sets), or is
refused cleanly: exit status 2, one `error:` line naming the file or key, no traceback, nothing
already written lost. Takes ~15 minutes on 2 idle cores; nothing here is timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = (
  "--config.mode=flat",
  "--config.rounds=1",
  "--config.data.train_limit=300",
  "--config.attack.num_examples=16",
  "--config.train.epochs=2",
  "--config.eval.num_examples=8",
)
IDENTICAL, REFUSED = "identical to an uninterrupted run", "refused cleanly"


@dataclasses.dataclass
class Row:
  case: str
  done: str
  exit: str
  message: str
  verdict: str
  good: bool


def command(workdir, *overrides, config="configs/trec_cnn.py") -> list[str]:
  return [
    sys.executable,
    "-m",
    "flat_jax.main",
    "--config",
    config,
    "--workdir",
    str(workdir),
    *TINY,
    *overrides,
  ]


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kwargs)


def in_namespace(script: str, network: bool = True) -> subprocess.CompletedProcess:
  """`script` as root of a private user + mount (+ network) namespace."""
  flags = ["--map-root-user", "--mount"] + ([] if network else ["--net"])
  return run(["unshare", *flags, "sh", "-c", script])


def shell(cmd: list[str]) -> str:
  return " ".join(shlex.quote(a) for a in cmd)


def error_lines(stderr: str) -> list[str]:
  return [l for l in stderr.splitlines() if l.startswith("error:")]


def last_message(stderr: str) -> str:
  errors = error_lines(stderr)
  if errors:
    return errors[-1]
  lines = [l for l in stderr.splitlines() if l.strip()]
  return (
    lines[-1].split("] ", 1)[-1] if lines else ""
  )  # without absl's "I1207 12:00:00 ... file:line]"


def comparable(workdir: pathlib.Path, timed_stages: bool = True):
  """What an uninterrupted run and a faulted-then-resumed one must share: everything but seconds
  and speeds. Which stages carry a timing is compared too, except where results.json itself was
  lost (the seconds of stages finished before were only there)."""
  results = json.loads((workdir / "results.json").read_text())
  results["timings_s"] = sorted(results.get("timings_s", {})) if timed_stages else None
  metrics = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  for m in metrics:
    m.pop("examples_per_s", None), m.pop("epoch_seconds", None)
  adversarial = {p.name: p.read_text() for p in sorted((workdir / "adversarial").glob("*.jsonl"))}
  return results, metrics, adversarial


def kill_when(cmd, ready: Callable[[], bool], timeout=600) -> bool:
  """Starts `cmd`, SIGKILLs it once ready() holds; False if it ended first."""
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + timeout
  while not ready() and time.time() < deadline and proc.poll() is None:
    time.sleep(0.02)
  killed = proc.poll() is None and ready()  # at the fault point, not at the deadline
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  return killed


def lines(path: pathlib.Path) -> int:
  return len(path.read_text().splitlines()) if path.exists() else 0


def results_of(workdir: pathlib.Path) -> dict:
  try:
    return json.loads((workdir / "results.json").read_text())
  except (OSError, ValueError):
    return {}


def garble(folder: pathlib.Path) -> None:
  for path in folder.rglob("*"):
    if path.is_file():
      path.write_bytes(b"garbage")


class Matrix:
  def __init__(self, out: pathlib.Path):
    self.out = out
    self._reference = None

  @property
  def reference(self):
    if self._reference is None:
      done = run(command(self.out / "reference"))
      if done.returncode != 0:
        sys.exit(f"the uninterrupted reference run failed:\n{done.stderr[-3000:]}")
      self._reference = comparable(self.out / "reference")
    return self._reference

  def fresh(self, name: str) -> pathlib.Path:
    path = self.out / name
    shutil.rmtree(path, ignore_errors=True)
    return path

  def finished_copy(self, name: str) -> pathlib.Path:
    _ = self.reference  # the property trains the reference run on first use
    path = self.fresh(name)
    shutil.copytree(self.out / "reference", path)
    return path

  def resumed(
    self,
    case: str,
    done: str,
    workdir: pathlib.Path,
    *,
    expect_in_log: str = "",
    killed: bool = True,
    timed_stages: bool = True,
  ) -> Row:
    """Reruns the same command in `workdir` and compares it with the uninterrupted run."""
    if not killed:
      return Row(case, done, "-", "the run ended before the fault point", "not tested", False)
    again = run(command(workdir))
    reference = self.reference if timed_stages else comparable(self.out / "reference", False)
    same = again.returncode == 0 and comparable(workdir, timed_stages) == reference
    seen = expect_in_log in again.stderr
    verdict = (
      IDENTICAL
      if same and seen
      else ("differs from an uninterrupted run" if again.returncode == 0 else "failed to resume")
    )
    if same and not seen:
      verdict = f"identical, but no '{expect_in_log}' in its log"
    message = next(
      (
        l.split("] ", 1)[-1]
        for l in again.stderr.splitlines()
        if expect_in_log and expect_in_log in l
      ),
      last_message(again.stderr),
    )
    return Row(case, done, str(again.returncode), message, verdict, same and seen)


def refused(
  case: str, done: str, proc: subprocess.CompletedProcess, *, must_say: str, code: int = 2
) -> Row:
  stderr = proc.stderr
  errors = error_lines(stderr)
  clean = (
    proc.returncode == code
    and len(errors) >= 1
    and must_say in errors[-1]
    and "Traceback" not in stderr
  )
  return Row(
    case, done, str(proc.returncode), last_message(stderr), REFUSED if clean else "NOT clean", clean
  )


CASES: dict[str, Callable[[Matrix], Row]] = {}


def case(fn):
  CASES[fn.__name__] = fn
  return fn


# ---- killed and resumed ---------------------------------------------------------------------------


@case
def kill_base_training(m: Matrix) -> Row:
  w = m.fresh("kill_base_training")
  killed = kill_when(
    command(w), lambda: (w / "checkpoints" / "train_base" / "latest" / "1").exists()
  )
  return m.resumed(
    "kill during base training",
    "SIGKILL after base epoch 1 was saved",
    w,
    expect_in_log="resuming after epoch 1",
    killed=killed,
  )


@case
def kill_round_attack(m: Matrix) -> Row:
  w = m.fresh("kill_round_attack")
  killed = kill_when(command(w), lambda: lines(w / "adversarial" / "round_1.jsonl") >= 5)
  return m.resumed(
    "kill during the round attack", "SIGKILL after 5 round-1 records", w, killed=killed
  )


@case
def kill_flat_training(m: Matrix) -> Row:
  w = m.fresh("kill_flat_training")
  stage = w / "checkpoints" / "train_flat_round_1" / "latest" / "1"
  killed = kill_when(command(w), stage.exists)
  return m.resumed(
    "kill during FLAT training",
    "SIGKILL after FLAT epoch 1 was saved",
    w,
    expect_in_log="resuming after epoch 1",
    killed=killed,
  )


@case
def kill_interpretation(m: Matrix) -> Row:
  w = m.fresh("kill_interpretation")
  killed = kill_when(command(w), lambda: "textfooler" in results_of(w).get("after_attack", {}))
  # killed before IG had finished: otherwise the resume would test nothing
  left = results_of(w)
  killed = (
    killed and left.get("status") != "finished" and not left.get("interpretation", {}).get("ig")
  )
  return m.resumed(
    "kill during IG", "SIGKILL once the test attack was recorded, before IG", w, killed=killed
  )


@case
def corrupt_newest_checkpoint(m: Matrix) -> Row:
  w = m.fresh("corrupt_newest_checkpoint")
  stage = w / "checkpoints" / "train_flat_round_1" / "latest"
  killed = kill_when(command(w), lambda: (stage / "2").exists())
  if killed:
    garble(stage / "2")
  return m.resumed(
    "corrupt newest checkpoint",
    "killed after FLAT epoch 2, its files garbled",
    w,
    expect_in_log="unreadable",
    killed=killed,
  )


@case
def corrupt_best_checkpoint(m: Matrix) -> Row:
  w = m.fresh("corrupt_best_checkpoint")
  best = w / "checkpoints" / "train_base" / "best"
  killed = kill_when(
    command(w), lambda: (w / "checkpoints" / "train_base" / "latest" / "2").exists()
  )
  if killed:
    for step in sorted(best.iterdir()):
      garble(step)
  return m.resumed(
    "corrupt best/ checkpoint",
    "killed after base training, every best/ step garbled",
    w,
    expect_in_log="unreadable",
    killed=killed,
  )


@case
def cut_metrics_line(m: Matrix) -> Row:
  w = m.fresh("cut_metrics_line")
  killed = kill_when(
    command(w), lambda: (w / "checkpoints" / "train_base" / "latest" / "1").exists()
  )
  if killed:
    with open(w / "metrics.jsonl", "a") as f:
      f.write('{"stage": "train_base", "ep')
  return m.resumed(
    "cut-off metrics.jsonl line",
    "killed in base training, half a line appended",
    w,
    expect_in_log="damaged line",
    killed=killed,
  )


@case
def corrupt_results(m: Matrix) -> Row:
  w = m.fresh("corrupt_results")
  killed = kill_when(
    command(w), lambda: (w / "checkpoints" / "train_flat_round_1" / "latest" / "1").exists()
  )
  if killed:
    (w / "results.json").write_text('{"status": "runn')
  return m.resumed(
    "corrupt results.json",
    "killed in FLAT training, results.json cut short",
    w,
    expect_in_log="is damaged",
    killed=killed,
    timed_stages=False,
  )


@case
def deleted_results(m: Matrix) -> Row:
  w = m.finished_copy("deleted_results")
  (w / "results.json").unlink()
  return m.resumed(
    "deleted results.json",
    "a finished run's results.json deleted",
    w,
    killed=True,
    timed_stages=False,
  )


@case
def rerun_finished(m: Matrix) -> Row:
  w = m.finished_copy("rerun_finished")
  before = {p: p.read_bytes() for p in w.rglob("*") if p.is_file() and p.name != "log.txt"}
  again = run(command(w))
  after = {p: p.read_bytes() for p in w.rglob("*") if p.is_file() and p.name != "log.txt"}
  good = again.returncode == 0 and before == after and "nothing to do" in again.stderr
  return Row(
    "rerun of a finished run",
    "the same command again",
    str(again.returncode),
    next((l.split("] ", 1)[-1] for l in again.stderr.splitlines() if "nothing to do" in l), ""),
    "identical, nothing rewritten" if good else "rewrote files",
    good,
  )


@case
def network_refused(m: Matrix) -> Row:
  w = m.fresh("network_refused")
  done = in_namespace(shell(command(w)), network=False)
  same = done.returncode == 0 and comparable(w) == m.reference
  return Row(
    "no network at all",
    "the run in an empty network namespace",
    str(done.returncode),
    last_message(done.stderr)[:80],
    IDENTICAL if same else "differs / failed",
    same,
  )


# ---- disks ---------------------------------------------------------------------------------------


@case
def full_disk(m: Matrix) -> Row:
  w = m.fresh("full_disk")
  w.mkdir(parents=True)
  for stale in ("full_disk_resumed", "full_disk.rc", "full_disk.stderr"):  # a rerun's leftovers
    shutil.rmtree(w.parent / stale, ignore_errors=True)
    (w.parent / stale).unlink(missing_ok=True) if (w.parent / stale).is_file() else None
  run_dir = w / "run"
  marker = w.parent / "full_disk.stderr"
  done = in_namespace(
    f"mount -t tmpfs -o size=60k tmpfs {w} && {shell(command(run_dir))} 2>{marker}; "
    f"echo $? > {w.parent}/full_disk.rc; mount -o remount,size=256m {w} && "
    f"{shell(command(run_dir))} && cp -r {run_dir} {w.parent}/full_disk_resumed"
  )
  full = subprocess.CompletedProcess(
    [], int((w.parent / "full_disk.rc").read_text()), "", marker.read_text()
  )
  row = refused(
    "full disk",
    "a 60 KB tmpfs, then the same command with room",
    full,
    must_say="no space left on device writing ",
  )
  if (
    len(error_lines(full.stderr)) != 1
    or sum(not l.startswith("I") for l in full.stderr.splitlines()) > 3
  ):
    row.verdict, row.good = "buried in other output", False
  resumed_ok = done.returncode == 0 and comparable(w.parent / "full_disk_resumed") == m.reference
  row.verdict += "; resumed " + (
    "identical to an uninterrupted run" if resumed_ok else "DIFFERENTLY"
  )
  row.good = row.good and resumed_ok
  return row


@case
def read_only_finished(m: Matrix) -> Row:
  w = m.finished_copy("read_only_finished")
  done = in_namespace(
    f"mount --bind {w} {w} && mount -o remount,bind,ro {w} && {shell(command(w))}"
  )
  message = next(
    (l.split("] ", 1)[-1] for l in done.stderr.splitlines() if "nothing to do" in l), ""
  )
  good = done.returncode == 0 and "read-only file system" in message
  return Row(
    "read-only workdir, finished run",
    "bind-mounted read-only",
    str(done.returncode),
    message,
    "prints its result" if good else "NOT clean",
    good,
  )


@case
def read_only_unfinished(m: Matrix) -> Row:
  w = m.fresh("read_only_unfinished")
  w.mkdir(parents=True)
  done = in_namespace(
    f"mount --bind {w} {w} && mount -o remount,bind,ro {w} && {shell(command(w))}"
  )
  return refused(
    "read-only workdir, no run yet",
    "bind-mounted read-only",
    done,
    must_say="is not writable (read-only file system)",
  )


# ---- concurrent use ------------------------------------------------------------------------------


@case
def two_writers(m: Matrix) -> Row:
  w = m.fresh("two_writers")
  first = subprocess.Popen(
    command(w), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  deadline = time.time() + 120
  while not (w / ".lock").exists() or not (w / ".lock").read_text():
    time.sleep(0.05)
    if time.time() > deadline or first.poll() is not None:
      break
  second = run(command(w, "--config.seed=7"))
  first.wait()
  row = refused(
    "two runs in one workdir",
    "a second run (another seed) 0.5 s after the first",
    second,
    must_say=f"in use by pid {first.pid}",
  )
  same = first.returncode == 0 and comparable(w) == m.reference
  row.verdict += "; the first " + ("identical to an uninterrupted run" if same else "DAMAGED")
  row.good = row.good and same
  return row


# ---- bad input -----------------------------------------------------------------------------------


def custom_data(
  m: Matrix, name: str, train: bytes | str, test: str | None = None, suffix="jsonl"
) -> pathlib.Path:
  folder = m.fresh(f"data_{name}")
  folder.mkdir(parents=True)
  (folder / f"train.{suffix}").write_bytes(train if isinstance(train, bytes) else train.encode())
  (folder / "test.jsonl").write_text(
    test
    if test is not None
    else "".join(json.dumps({"text": f"a test text {i}", "label": i % 2}) + "\n" for i in range(20))
  )
  return folder


def rows(labels) -> str:
  return "".join(
    json.dumps({"text": f"text number {i} about {'good' if l == 1 else 'bad'} things", "label": l})
    + "\n"
    for i, l in enumerate(labels)
  )


def custom_run(
  m: Matrix, name: str, folder: pathlib.Path, *overrides
) -> subprocess.CompletedProcess:
  return run(
    command(
      m.fresh(name),
      "--config.data.name=custom",
      f"--config.data.path={folder}",
      *overrides,
      config="configs/default.py",
    )
  )


def bad_input(
  name: str, what: str, must_say: str, make: Callable[[Matrix], subprocess.CompletedProcess]
):
  def fn(m: Matrix) -> Row:
    return refused(name.replace("_", " "), what, make(m), must_say=must_say)

  fn.__name__ = name
  CASES[name] = fn


bad_input(
  "missing_data_path",
  "data.path set to a folder that does not exist",
  "no such folder",
  lambda m: run(command(m.fresh("missing_data_path"), "--config.data.path=/nonexistent")),
)
bad_input(
  "one_class",
  "a dataset with one class",
  "at least two",
  lambda m: custom_run(m, "one_class", custom_data(m, "one_class", rows([0] * 40), rows([0] * 10))),
)
bad_input(
  "signed_labels",
  "labels -1/1 without label_names",
  "label_names",
  lambda m: custom_run(
    m, "signed_labels", custom_data(m, "signed", rows([-1, 1] * 20), rows([-1, 1] * 5))
  ),
)
bad_input(
  "label_gap",
  "labels 1/2 (no class 0)",
  "not the ids 0..1",
  lambda m: custom_run(m, "label_gap", custom_data(m, "gap", rows([1, 2] * 20), rows([1, 2] * 5))),
)
bad_input(
  "not_utf8",
  "a train file that is not UTF-8",
  "train.jsonl:2: not UTF-8",
  lambda m: custom_run(
    m,
    "not_utf8",
    custom_data(m, "latin1", b'{"text": "fine", "label": 0}\n{"text": "caf\xe9", "label": 1}\n'),
  ),
)
bad_input(
  "empty_train",
  "an empty train.jsonl",
  "no rows",
  lambda m: custom_run(m, "empty_train", custom_data(m, "empty", "\n")),
)


def _garbage_vectors(m: Matrix) -> subprocess.CompletedProcess:
  path = m.out / "garbage.bin"
  path.write_bytes(os.urandom(4096))
  return run(
    command(
      m.fresh("garbage_vectors"),
      f"--config.model.embeddings={path}",
      "--config.model.embeddings_format=word2vec_bin",
    )
  )


def _config_syntax(m: Matrix) -> subprocess.CompletedProcess:
  path = m.out / "syntax.py"
  path.write_text("def get_config(:\n  return 1\n")
  return run(command(m.fresh("config_syntax"), config=str(path)))


bad_input("garbage_vectors", "a word2vec .bin that is garbage", "garbage.bin", _garbage_vectors)
bad_input(
  "non_finite_loss",
  "learning rate inf",
  "the training loss is nan",
  lambda m: run(command(m.fresh("non_finite_loss"), "--config.train.learning_rate=inf")),
)
bad_input(
  "unknown_key",
  "--config.train.batchsize=3 (a typo)",
  "did you mean train.batch_size",
  lambda m: run(command(m.fresh("unknown_key"), "--config.train.batchsize=3")),
)
bad_input(
  "missing_config",
  "--config that does not exist",
  "no such config file",
  lambda m: run(command(m.fresh("missing_config"), config="configs/nope.py")),
)
bad_input(
  "config_syntax",
  "a config file with a syntax error",
  "syntax.py:1: invalid syntax",
  _config_syntax,
)
bad_input(
  "bae_without_lm",
  "eval.attacks with BAE and no attack.masked_lm",
  "attack.masked_lm",
  lambda m: run(command(m.fresh("bae_without_lm"), "--config.eval.attacks=('textfooler','bae')")),
)


@case
def huge_csv_field(m: Matrix) -> Row:
  long_text = "word " * 40000  # 200 KB in one CSV field, over Python's csv default of 128 KiB
  body = "text,label\n" + "".join(
    f'"{long_text if i == 0 else f"short text {i}"}",{i % 2}\n' for i in range(40)
  )
  folder = custom_data(m, "csv", body, suffix="csv")
  done = custom_run(
    m,
    "huge_csv_field",
    folder,
    "--config.eval.attacks=()",
    "--config.eval.interpret=()",
    "--config.mode=base",
    "--config.rounds=0",
  )
  good = done.returncode == 0 and results_of(m.out / "huge_csv_field").get("status") == "finished"
  return Row(
    "a CSV field over 128 KiB",
    "one 200 KB text in train.csv",
    str(done.returncode),
    last_message(done.stderr)[:80],
    "loads and runs" if good else "NOT clean",
    good,
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="", help="folder for the runs (default: a temporary one)")
  parser.add_argument("--only", default="", help="comma-separated case names")
  args = parser.parse_args()
  out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="fault_matrix_"))
  out.mkdir(parents=True, exist_ok=True)
  names = [n for n in args.only.split(",") if n] or list(CASES)
  unknown = sorted(set(names) - set(CASES))
  if unknown:
    sys.exit(f"unknown cases {unknown}; there are: {', '.join(CASES)}")
  m = Matrix(out)
  print(f"runs in {out}", flush=True)
  print("| case | what was done | exit | message | verdict |\n|---|---|---|---|---|", flush=True)
  bad = 0
  for name in names:
    t0 = time.perf_counter()
    try:
      row = CASES[name](m)
    except Exception as e:  # the matrix itself must not stop at one broken case
      row = Row(name, "", "-", f"{type(e).__name__}: {e}"[:200], "MATRIX ERROR", False)
    bad += not row.good
    message = row.message.replace("|", "\\|")[:220]
    print(
      f"| {row.case} | {row.done} | {row.exit} | {message} | "
      f"{row.verdict}{'' if row.good else ' **BAD**'} ({time.perf_counter() - t0:.0f} s) |",
      flush=True,
    )
  print(f"\n{len(names) - bad} of {len(names)} cases good", flush=True)
  sys.exit(1 if bad else 0)


if __name__ == "__main__":
  main()
