"""Bad inputs and concurrent use end in one clear message, with nothing already written lost."""

import json
import shlex
import signal
import subprocess
import sys

import pytest

from flat_jax import workdir as workdir_lib
from flat_jax.config import preset
from flat_jax.data.datasets import DataError, load_dataset

HOLD = (
  "import sys, time; from flat_jax import workdir; "
  "ctx = workdir.exclusive(sys.argv[1]); ctx.__enter__(); print('held', flush=True); time.sleep(600)"
)


def _holder(path):
  proc = subprocess.Popen(
    [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
  )
  assert proc.stdout.readline().strip() == "held"
  return proc


def test_a_second_writer_is_refused_and_a_killed_holder_does_not_block(tmp_path):
  holder = _holder(tmp_path)
  try:
    with pytest.raises(workdir_lib.WorkdirBusy, match=f"pid {holder.pid} on .* since "):
      with workdir_lib.exclusive(tmp_path):
        pass
    cli = subprocess.run(
      [
        sys.executable,
        "-m",
        "flat_jax.main",
        "--config",
        "configs/trec_cnn.py",
        "--workdir",
        str(tmp_path),
      ],
      capture_output=True,
      text=True,
    )
    assert cli.returncode == 2 and f"in use by pid {holder.pid}" in cli.stderr
    assert not (tmp_path / "config.json").exists() and not (tmp_path / "results.json").exists()
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with workdir_lib.exclusive(tmp_path):  # the kernel dropped the killed run's lock
    pass


def test_a_non_finite_loss_stops_the_stage_and_names_it(tmp_path, shared_data):
  cli = subprocess.run(
    [
      sys.executable,
      "-m",
      "flat_jax.main",
      "--config",
      "configs/trec_cnn.py",
      "--workdir",
      str(tmp_path),
      "--config.data.train_limit=200",
      "--config.train.learning_rate=inf",
      "--config.train.epochs=2",
    ],
    capture_output=True,
    text=True,
  )
  assert cli.returncode == 2, cli.stderr[-2000:]
  assert "train_base: the training loss is nan at epoch 1, step 2" in cli.stderr
  assert json.loads((tmp_path / "results.json").read_text())["status"] == "running"
  assert not (tmp_path / "checkpoints" / "train_base" / "latest" / "1").exists()


def test_unknown_config_key_is_one_line_with_the_closest_key(tmp_path):
  cli = subprocess.run(
    [
      sys.executable,
      "-m",
      "flat_jax.main",
      "--config",
      "configs/trec_cnn.py",
      "--workdir",
      str(tmp_path),
      "--config.train.batchsize=3",
    ],
    capture_output=True,
    text=True,
  )
  assert cli.returncode == 2
  assert cli.stderr.strip() == (
    "error: unknown config key 'train.batchsize' (did you mean train.batch_size?)"
  )
  missing = subprocess.run(
    [
      sys.executable,
      "-m",
      "flat_jax.main",
      "--config",
      "configs/nope.py",
      "--workdir",
      str(tmp_path),
    ],
    capture_output=True,
    text=True,
  )
  assert missing.returncode == 2 and missing.stderr.strip().startswith(
    "error: --config configs/nope.py: no such config file or preset (presets: agnews_bert, "
  )
  broken = tmp_path / "broken.py"
  broken.write_text(
    "from flat_jax.config import preset\n\ndef get_config(:\n  return preset('trec', 'cnn')\n"
  )
  syntax = subprocess.run(
    [sys.executable, "-m", "flat_jax.main", "--config", str(broken), "--workdir", str(tmp_path)],
    capture_output=True,
    text=True,
  )
  assert syntax.returncode == 2 and syntax.stderr.strip() == (
    f"error: --config {broken}:3: invalid syntax"
  )


def _custom(tmp_path, labels, **data):
  for split in ("train", "test"):
    with open(tmp_path / f"{split}.jsonl", "w") as f:
      for i, label in enumerate(labels * 3):
        f.write(json.dumps({"text": f"text number {i}", "label": label}) + "\n")
  c = preset("sst2", "cnn").data
  c.name, c.path = "custom", str(tmp_path)
  for key, value in data.items():
    c[key] = value
  return c


def test_labels_map_through_their_names_and_gaps_or_one_class_are_refused(tmp_path):
  signed = load_dataset(_custom(tmp_path, [-1, 1], label_names=("-1", "1")))
  assert signed.label_names == ("-1", "1") and list(signed.train.labels[:2]) == [0, 1]
  with pytest.raises(DataError, match=r"labels are \[-1, 1\].*label_names='\(\"-1\", \"1\"\)'"):
    load_dataset(_custom(tmp_path, [-1, 1]))
  with pytest.raises(DataError, match=r"labels are \[1, 2\], not the ids 0..1"):
    load_dataset(_custom(tmp_path, [1, 2]))
  with pytest.raises(DataError, match="1 class .*at least two"):
    load_dataset(_custom(tmp_path, [0, 0]))


def test_a_set_data_path_without_data_is_an_error_not_a_fallback(tmp_path):
  c = preset("sst2", "cnn").data
  c.path = str(tmp_path / "nonexistent")
  with pytest.raises(DataError, match="data.path=.*nonexistent: no such folder"):
    load_dataset(c)


def test_bad_files_name_file_and_line(tmp_path):
  (tmp_path / "test.jsonl").write_text('{"text": "fine", "label": 0}\n{"text": "ok", "label": 1}\n')
  (tmp_path / "train.jsonl").write_bytes(
    b'{"text": "fine", "label": 0}\n{"text": "caf\xe9", "label": 1}\n'
  )
  c = preset("sst2", "cnn").data
  c.name, c.path = "custom", str(tmp_path)
  with pytest.raises(DataError, match=r"train.jsonl:2: not UTF-8"):
    load_dataset(c)
  (tmp_path / "train.jsonl").write_text("\n")
  with pytest.raises(DataError, match=r"train.jsonl: no rows"):
    load_dataset(c)
  (tmp_path / "train.jsonl").unlink()
  long_text = "word " * 40000  # 200 KB in one CSV field
  (tmp_path / "train.csv").write_text(
    f'text,label\n"{long_text}",0\nshort,1\n"{long_text}",1\nx,0\n'
  )
  assert load_dataset(c).num_classes == 2


def test_bae_without_a_masked_lm_is_refused_before_training(tmp_path):
  from flat_jax import pipeline

  c = preset("trec", "cnn")
  c.eval.attacks = ("textfooler", "bae")
  with pytest.raises(
    pipeline.RunError, match="bae need a masked language model: set attack.masked_lm"
  ):
    pipeline.run(c, tmp_path)
  assert not (tmp_path / "checkpoints").exists()


def test_damaged_metrics_line_and_results_file_are_recovered(tmp_path, caplog):
  from flat_jax import pipeline
  from flat_jax.training.loop import MetricsWriter

  metrics = tmp_path / "metrics.jsonl"
  metrics.write_text(
    '{"stage": "train_base", "epoch": 1}\n{"stage": "train_base", "epoch": 2}\n{"stage": "tr'
  )
  MetricsWriter(metrics).drop_after("train_base", 1)
  assert metrics.read_text() == '{"stage": "train_base", "epoch": 1}\n'
  assert "metrics.jsonl:3: a damaged line" in caplog.text
  (tmp_path / "results.json").write_text('{"status": "finish')
  assert pipeline.read_results(tmp_path) == {}
  assert (tmp_path / "results.json.damaged").exists() and not (tmp_path / "results.json").exists()


TINY = (
  "--config.data.train_limit=200",
  "--config.train.epochs=1",
  "--config.eval.attacks=()",
  "--config.eval.interpret=()",
)


def _main(workdir, *overrides):
  return " ".join(
    shlex.quote(a)
    for a in [
      sys.executable,
      "-m",
      "flat_jax.main",
      "--config",
      "configs/trec_cnn.py",
      "--workdir",
      str(workdir),
      *TINY,
      *overrides,
    ]
  )


def _in_own_mounts(script: str) -> subprocess.CompletedProcess:
  """Runs `script` as root of a private user and mount namespace (no privileges needed outside):
  a full disk is a small tmpfs, a read-only workdir a read-only bind mount, both real to the kernel."""
  return subprocess.run(
    ["unshare", "--map-root-user", "--mount", "sh", "-c", script], capture_output=True, text=True
  )


def _errors(stderr: str) -> list[str]:
  return [l for l in stderr.splitlines() if l and not l.startswith("I")]


def test_a_full_disk_is_one_message_and_the_same_command_resumes(tmp_path, shared_data):
  reference = subprocess.run(
    _main(tmp_path / "reference"), shell=True, capture_output=True, text=True
  )
  assert reference.returncode == 0, reference.stderr[-2000:]
  disk = tmp_path / "disk"
  disk.mkdir()
  out = _in_own_mounts(
    f"mount -t tmpfs -o size=40k tmpfs {disk} && {_main(disk / 'run')}; echo rc=$? >&2; "
    f"mount -o remount,size=64m {disk} && {_main(disk / 'run')} >{tmp_path}/resumed.log 2>&1; "
    f"echo rc=$? >&2; cp {disk}/run/results.json {tmp_path}/results.json"
  )
  full, resumed = out.stderr.split("rc=2\n", 1)
  assert _errors(full)[-1].startswith("error: no space left on device writing "), full[-3000:]
  assert "Traceback" not in full and len(_errors(full)) <= 3, full[-3000:]  # not buried in Orbax's
  assert resumed.strip() == "rc=0", (tmp_path / "resumed.log").read_text()[-2000:]
  got = json.loads((tmp_path / "results.json").read_text())
  want = json.loads((tmp_path / "reference" / "results.json").read_text())
  assert got["status"] == "finished" and got["standard_accuracy"] == want["standard_accuracy"]


def test_a_read_only_workdir_prints_a_finished_run_and_refuses_anything_that_writes(
  tmp_path, shared_data
):
  run = tmp_path / "run"
  done = subprocess.run(_main(run), shell=True, capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-2000:]
  before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
  out = _in_own_mounts(
    f"mount --bind {tmp_path} {tmp_path} && mount -o remount,bind,ro {tmp_path} && "
    f"{_main(run)}; echo rc=$? >&2; {_main(run, '--config.seed=7')}; echo rc=$? >&2; "
    f"{_main(run, '--config.stage=evaluate')}; echo rc=$? >&2; {_main(tmp_path / 'new')}; echo rc=$? >&2"
  )
  finished, other_seed, evaluate, new = out.stderr.split("rc=")[:4]
  accuracy = json.loads((run / "results.json").read_text())["standard_accuracy"]
  assert (
    f"read-only file system): this run already finished (test accuracy {accuracy:.2f})" in finished
  )
  assert other_seed.startswith("0\n") and not _errors(finished)
  assert _errors(other_seed)[-1] == (
    f"error: {run} is not writable (read-only file system) and holds "
    f"no finished run of this config: make it writable, or copy it and "
    f"pass the copy as --workdir"
  ) and evaluate.startswith("2\n")
  assert _errors(evaluate)[-1].endswith(
    "must be written to by stage=evaluate: make it writable, or "
    "copy it and pass the copy as --workdir"
  ) and new.startswith("2\n")
  assert (
    _errors(new)[-1]
    == f"error: cannot create the workdir {tmp_path / 'new'}: Read-only file system"
  )
  assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_full_disk_on_a_plain_file_names_it_and_the_log_file_goes_quiet(tmp_path, capsys):
  """/dev/full: every write fails with ENOSPC, as a buffered write does on a full disk (at close,
  without a filename)."""
  import errno
  import logging
  from flat_jax import pipeline, workdir
  from flat_jax.training.loop import MetricsWriter

  (tmp_path / "results.json.tmp").symlink_to("/dev/full")
  with pytest.raises(OSError) as error:
    pipeline.write_results(tmp_path, {"status": "running"})
  assert error.value.errno == errno.ENOSPC and error.value.filename == str(
    tmp_path / "results.json"
  )
  assert workdir.no_space_left(error.value) == f" writing {tmp_path / 'results.json'}"
  assert not (tmp_path / "results.json.tmp").exists() and not (tmp_path / "results.json").exists()
  (tmp_path / "metrics.jsonl").symlink_to("/dev/full")
  with pytest.raises(OSError, match="metrics.jsonl"):
    MetricsWriter(tmp_path / "metrics.jsonl").write({"stage": "train_base", "epoch": 1})
  (tmp_path / "log.txt").symlink_to("/dev/full")
  handler = workdir.LogFile(tmp_path / "log.txt")
  root = logging.getLogger()
  level = root.level
  root.addHandler(handler)
  root.setLevel(logging.INFO)  # whatever earlier tests left it at: the records must reach it
  try:
    logging.warning("first")
    logging.warning("second")
    removed = handler not in root.handlers  # it took itself off at the first failed write
  finally:
    root.removeHandler(handler)
    root.setLevel(level)
  assert removed and "Logging error" not in capsys.readouterr().err
