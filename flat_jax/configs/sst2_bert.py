"""BERT on SST-2 with the paper's hyper-parameters (flat_jax.config.preset)."""
from flat_jax.config import preset


def get_config():
  return preset("sst2", "bert")
