"""Default config (the README's first command): FLAT on SST-2 with the CNN, sized for a laptop CPU.

The paper's settings (configs/sst2_cnn.py: 3 rounds, every training example attacked each round,
500 test examples attacked) with the training attack capped at a seeded 1000 examples per round,
2 rounds, and 300 test examples, so the whole procedure (base -> 2 x (attack, FLAT retraining) ->
test accuracy, after-attack accuracy, IG consistency -> report) ends well within an hour on 2 cores.
"""
from flat_jax.config import preset


def get_config():
  c = preset("sst2", "cnn")
  c.mode = "flat"
  c.rounds = 2
  c.attack.num_examples = 1000
  c.attack.workers = 2
  c.eval.num_examples = 300
  return c
