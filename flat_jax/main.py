"""python -m flat_jax.main --config sst2_cnn --workdir DIR [--config.key=value ...]
(or flat-jax ...; --config takes a preset name or a config file such as configs/sst2_cnn.py)

Over several processes (launch/ has the scripts): the same command in each, with
--coordinator_address HOST:PORT --num_processes N --process_id I (or their FLAT_JAX_* variables;
under SLURM and on multi-host TPU slices nothing: JAX finds them)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pathlib
import sys
import traceback

from absl import app, flags
from ml_collections import config_flags

from flat_jax import config as config_lib
from flat_jax import distributed
from flat_jax import pipeline
from flat_jax import runtime
from flat_jax import workdir as workdir_lib
from flat_jax.workdir import WorkdirBusy
from flat_jax.data.datasets import DataError
from flat_jax.data.embeddings import EmbeddingError
from flat_jax.models.checkpoints_hf import CheckpointError
from flat_jax.training.loop import TrainingError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
  "config",
  None,
  "A preset name (sst2_cnn, default, ...) or a config file (configs/<dataset>_<model>.py).",
  lock_config=True,
)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, adversarial sets, results.json.")
flags.DEFINE_string(
  "coordinator_address",
  "",
  "host:port of process 0's coordinator, for a run "
  f"over several processes (or ${distributed.COORDINATOR_ENV}).",
)
flags.DEFINE_integer(
  "num_processes", 0, f"Processes of the run (or ${distributed.NUM_PROCESSES_ENV})."
)
flags.DEFINE_integer(
  "process_id",
  -1,
  f"This process's index, 0 = the one that writes results (or ${distributed.PROCESS_ID_ENV}).",
)
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(logging.Filter):
  """Drops the INFO chatter of Orbax and TensorStore (several lines per checkpoint save) and their
  tracebacks of a full disk."""

  def filter(self, record: logging.LogRecord) -> bool:
    if not any(part in record.pathname for part in ("/orbax/", "/tensorstore/")):
      return True
    # a full disk: Orbax's writer threads log a traceback each; main says it once, in one line
    full = "No space left on device" in record.getMessage() or (
      record.exc_info is not None and workdir_lib.no_space_left(record.exc_info[1]) is not None
    )
    return record.levelno >= logging.WARNING and not full


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    distributed.initialize(
      distributed.detect(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    )
  except distributed.DistributedError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  workdir = pathlib.Path(FLAGS.workdir)
  try:
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    print(f"error: cannot create the workdir {workdir}: {e.strerror}", file=sys.stderr)
    _exit(2)
  if distributed.is_primary():  # the others log to stderr only
    try:
      handler = workdir_lib.LogFile(workdir / "log.txt")
      handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
      logging.getLogger().addHandler(handler)
    except OSError as e:
      if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
        raise
      # a read-only workdir: the pipeline says what it can still do there
  for h in logging.getLogger().handlers:
    h.addFilter(_QuietLibraries())
  _quiet_closed_loop_callbacks()
  try:
    runtime.enable_compilation_cache()
  except Exception as e:  # only slower without it
    logging.warning("no persistent compilation cache (%s: %s)", type(e).__name__, e)
  try:
    pipeline.run(FLAGS.config, workdir)
  except (
    config_lib.ConfigError,
    DataError,
    EmbeddingError,
    CheckpointError,
    pipeline.RunError,
    distributed.DistributedError,
    WorkdirBusy,
    TrainingError,
  ) as e:
    logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    _exit(2)
  except BaseException as e:
    if (full := workdir_lib.no_space_left(e)) is not None:
      message = (
        f"no space left on device{full}: free space where {workdir} lives (df -h {workdir}) "
        f"and run the same command again; it resumes from the last completed step"
      )
      logging.error("%s", message)
      print(f"error: {message}", file=sys.stderr)
      _exit(2)
    if distributed.process_count() == 1:
      raise
    traceback.print_exc()
    _exit(1)


def _quiet_closed_loop_callbacks() -> None:
  """When a checkpoint write fails (a full disk), TensorStore's threads still complete their futures
  into Orbax's event loop, already closed, and each reports 'RuntimeError: Event loop is closed' as
  unraisable, ahead of the real cause. Harmless: those are dropped, everything else is kept."""
  default = sys.unraisablehook

  def hook(unraisable):
    frames = traceback.extract_tb(unraisable.exc_traceback) if unraisable.exc_traceback else []
    if not (
      unraisable.exc_type is RuntimeError
      and str(unraisable.exc_value) == "Event loop is closed"
      and frames
      and frames[-1].filename.endswith("asyncio/base_events.py")
    ):
      default(unraisable)

  sys.unraisablehook = hook


def _exit(code: int) -> None:
  """Over several processes, leave at once: a normal exit waits in JAX's shutdown for peers that are
  themselves waiting in a collective for this process (minutes); gone, it is noticed by the next
  heartbeat and the others stop too."""
  if distributed.process_count() > 1:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
  sys.exit(code)


def _config_flag_problem(argv: list[str]) -> str | None:
  """One line for what ml_collections reports as a long traceback: an unknown --config.<key> (with
  the closest valid key) or a --config file that does not exist."""
  import difflib

  schema = [key for key, _ in config_lib._flatten(config_lib.base_config())]
  for i, arg in enumerate(argv[1:], start=1):
    if arg.startswith("--config."):
      key = arg[len("--config.") :].split("=", 1)[0]
      if key not in schema:
        close = difflib.get_close_matches(key, schema, n=1, cutoff=0.75) or [
          k for k in schema if k.split(".")[-1] == key.split(".")[-1]
        ]
        return f"unknown config key '{key}'" + (f" (did you mean {close[0]}?)" if close else "")
    path = (
      arg[len("--config=") :]
      if arg.startswith("--config=")
      else (argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None)
    )
    if path is not None:
      try:
        file = pathlib.Path(config_lib.config_file(path).split(":", 1)[0])
      except config_lib.ConfigError as e:
        return str(e)
      try:
        compile(file.read_bytes(), str(file), "exec")
      except SyntaxError as e:
        return f"--config {file}:{e.lineno or 1}: {e.msg}"
      except OSError as e:
        return f"--config {file}: {e.strerror}"
  return None


def with_config_files(argv: list[str]) -> list[str]:
  """argv with a preset name after --config replaced by its shipped file (config.config_file);
  anything that is not one is left for the checks and the parser to report."""
  out = list(argv)
  for i, arg in enumerate(out):
    for prefix in ("--config=", "-config="):
      if arg.startswith(prefix):
        with contextlib.suppress(config_lib.ConfigError):
          out[i] = prefix + config_lib.config_file(arg[len(prefix) :])
    if arg in ("--config", "-config") and i + 1 < len(out):
      with contextlib.suppress(config_lib.ConfigError):
        out[i + 1] = config_lib.config_file(out[i + 1])
  return out


def _parse_flags(argv: list[str]) -> list[str]:
  argv = with_config_files(argv)
  problem = _config_flag_problem(argv)
  if problem is None:
    try:
      return FLAGS(argv)
    except Exception as e:  # a config file that fails to load, a value of the wrong type
      lines = [l.strip() for l in str(e).splitlines() if l.strip()]
      problem = lines[-1] if lines else type(e).__name__
      cause = e.__cause__ or e.__context__
      if isinstance(cause, SyntaxError):
        problem = f"{cause.filename}:{cause.lineno}: {cause.msg}"
  print(f"error: {problem}", file=sys.stderr)
  sys.exit(2)


def cli() -> None:
  """The `flat-jax` console script: the same as python -m flat_jax.main."""
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  cli()
