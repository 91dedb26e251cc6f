"""Default config: CNN on SST-2 with the paper's settings (the README's first command)."""
from flat_jax.config import preset


def get_config():
  return preset("sst2", "cnn")
