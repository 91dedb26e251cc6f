"""LSTM on IMDB with the paper's hyper-parameters (flat_jax.config.preset)."""
from flat_jax.config import preset


def get_config():
  return preset("imdb", "lstm")
