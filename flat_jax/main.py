"""python -m flat_jax.main --config configs/sst2_cnn.py --workdir DIR [--config.key=value ...]"""
from __future__ import annotations

import logging
import pathlib
import sys

from absl import app, flags
from ml_collections import config_flags

from flat_jax import config as config_lib
from flat_jax import pipeline
from flat_jax import runtime
from flat_jax.data.datasets import DataError
from flat_jax.data.embeddings import EmbeddingError
from flat_jax.models.checkpoints_hf import CheckpointError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (configs/<dataset>_<model>.py).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, adversarial sets, results.json.")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(logging.Filter):
  """Drops the INFO chatter of Orbax and TensorStore (several lines per checkpoint save)."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or not any(
        part in record.pathname for part in ("/orbax/", "/tensorstore/"))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  workdir = pathlib.Path(FLAGS.workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  handler = logging.FileHandler(workdir / "log.txt")
  handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
  logging.getLogger().addHandler(handler)
  for h in logging.getLogger().handlers:
    h.addFilter(_QuietLibraries())
  try:
    runtime.enable_compilation_cache()
  except Exception as e:  # only slower without it
    logging.warning("no persistent compilation cache (%s: %s)", type(e).__name__, e)
  try:
    pipeline.run(FLAGS.config, workdir)
  except (config_lib.ConfigError, DataError, EmbeddingError, CheckpointError, pipeline.RunError) as e:
    logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
