"""Default config (the README's first command): FLAT on SST-2 with the CNN, sized for a laptop CPU.

Our training protocol. The authors' (`protocol = "authors"`) was the default for a while because it
seemed to make FLAT robust on SST-2; its gain came from saturated probabilities that blind the
attack, and under the calibrated evaluation attack it is within noise of base (REPRODUCTION.md,
"What explains the gap"), so the default carries none of its defects.

The paper's settings (configs/sst2_cnn.py: 3 rounds, every training example attacked each round,
500 test examples attacked) with the training attack capped at a seeded 1000 examples per round,
2 rounds, and 300 test examples, so the whole procedure (base -> 2 x (attack, FLAT retraining) ->
test accuracy, after-attack accuracy at the calibrated temperature, IG consistency -> report) ends
in minutes on 2 cores.

One change from the paper's CNN: the word vectors train (model.freeze_embeddings=False). Selected
on SST-2 dev, two seeds (REPRODUCTION.md, "What explains the gap"): with frozen GloVe vectors FLAT's
dev after-attack accuracy is 11.0 (base 10.3 / 9.0) and the rounds' attack success rate on the
training set never falls; with trainable ones FLAT reaches 22.3 / 19.0 (base 9.7 / 13.0), clean dev
accuracy 79.5 / 76.8 against 76.7 frozen, and the success rate falls 81% -> 65% over the rounds.
The gain comes with adversarial training itself (adv with trainable vectors: 20.0 on seed 1111),
not from FLAT's loss alone.
"""
from flat_jax.config import preset


def get_config():
  c = preset("sst2", "cnn")
  c.mode = "flat"
  c.rounds = 2
  c.attack.num_examples = 1000
  c.attack.workers = 2
  c.eval.num_examples = 300
  c.model.freeze_embeddings = False
  return c
