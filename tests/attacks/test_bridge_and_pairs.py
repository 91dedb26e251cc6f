import threading

import numpy as np
import pytest

from flat_jax import pipeline
from flat_jax.attacks.bridge import PredictionBridge, bucket_sizes
from flat_jax.attacks.pairs import replaced_pairs
from flat_jax.config import preset
from flat_jax.data.datasets import load_dataset
from flat_jax.training.artifacts import load_trained


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
  workdir = tmp_path_factory.mktemp("bridge")
  c = preset("sst2", "cnn")
  c.mode = "flat"
  c.rounds = 0  # base, then the FLAT objective on clean data: a model with a word mask
  c.stage = "train"
  c.data.train_limit = 400
  c.data.test_limit = 100
  c.train.epochs = 1
  pipeline.run(c, workdir)
  return load_trained(workdir), load_dataset(c.data).test.texts[:60]


def test_bridge_matches_a_direct_model_call(trained):
  model, texts = trained
  bridge = PredictionBridge.from_trained(model)
  probs = bridge(texts)
  ids, _ = model.text.vocab.encode_batch(texts, model.config.data.max_length)
  direct = np.asarray(__import__("jax").nn.softmax(model.apply(ids, deterministic=True)["logits"]))
  np.testing.assert_allclose(probs, direct, atol=1e-6)
  assert probs.shape == (60, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_bucketing_bounds_compiles_and_cache_counts(trained):
  model, texts = trained
  bridge = PredictionBridge.from_trained(model, batch_size=32)
  for n in (1, 3, 7, 20, 33, 60):
    bridge(texts[:n])
  assert bridge.model_calls == 60  # every later call hit the cache
  bridge([t + " really" for t in texts[:5]] + texts[:5])
  assert bridge.model_calls == 65 and bridge.queries == 1 + 3 + 7 + 20 + 33 + 60 + 10
  assert bridge.compiled_shapes() <= len(bucket_sizes(50, 8))


def test_a_texts_probabilities_do_not_depend_on_its_batch(trained):
  """Bit for bit: alone, among 3 or among 60 texts, first or last (an attack's choice between two
  substitutions can hang on the last bit)."""
  model, texts = trained
  target = texts[7]
  alone = PredictionBridge.from_trained(model)([target])[0]
  for batch in ([target, texts[0], texts[1]], texts[:60], texts[8:40] + [target]):
    probs = PredictionBridge.from_trained(model)(batch)
    assert (probs[batch.index(target)] == alone).all()


def test_bridge_is_thread_safe(trained):
  model, texts = trained
  bridge = PredictionBridge.from_trained(model)
  expected = PredictionBridge.from_trained(model)(texts)
  results = {}

  def work(k):
    results[k] = bridge(texts[k::4] + texts[:3])

  threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
  [t.start() for t in threads]
  [t.join() for t in threads]
  for k in range(4):
    np.testing.assert_allclose(
      results[k], np.concatenate([expected[k::4], expected[:3]]), atol=1e-6
    )


def test_bucket_sizes():
  assert bucket_sizes(50, 8) == (8, 16, 32, 50)
  assert bucket_sizes(15, 8) == (8, 15)
  assert bucket_sizes(128, 1)[-1] == 128


def test_replaced_pairs_by_position():
  assert replaced_pairs("a very bad sign", "a very wicked sign") == [(2, "bad", "wicked")]
  assert replaced_pairs("It's a treat!", "it 's a cure !") == [(3, "treat", "cure")]
  assert replaced_pairs("the film is great", "the film is truly great") == []
  assert replaced_pairs("the film was great fun", "the movie great fun") == []  # 2 words -> 1
  assert replaced_pairs("one two three four", "one TWO three five") == [(3, "four", "five")]


def test_training_mode_bridge_is_noisy_but_one_function_of_the_text(trained):
  """attack.model_mode=training (the authors' round attacks): sampled masks and dropout change the
  probabilities, but each text keeps its own noise whatever batch it comes in, so the cache holds."""
  model, texts = trained
  clean = PredictionBridge.from_trained(model)(texts[:40])
  noisy = PredictionBridge.from_trained(model, noise_seed=1111)
  first = noisy(texts[:40])
  assert np.abs(first - clean).max() > 1e-3  # noise reaches the output
  assert np.allclose(first.sum(1), 1.0, atol=1e-5)
  again = PredictionBridge.from_trained(model, noise_seed=1111)(texts[39::-1])[::-1]
  np.testing.assert_array_equal(again, first)  # the same text, the same noise
  other_seed = PredictionBridge.from_trained(model, noise_seed=2222)(texts[:40])
  assert np.abs(other_seed - first).max() > 1e-3


def test_textattack_knows_the_bridge_as_a_classifier(trained):
  """No 'Unknown if model of class PredictionBridge compatible' warning per worker and round."""
  import logging
  from flat_jax.attacks import resources
  from flat_jax.attacks.bridge import textattack_wrapper

  resources.prepare_textattack_environment()
  from textattack.goal_functions import UntargetedClassification
  from textattack.shared.utils import logger as textattack_logger  # its own handler, no propagation

  model, _ = trained
  messages = []
  handler = logging.Handler()
  handler.emit = lambda record: messages.append(record.getMessage())
  level = textattack_logger.level
  textattack_logger.addHandler(handler)
  textattack_logger.setLevel(logging.INFO)
  try:
    UntargetedClassification(textattack_wrapper(PredictionBridge.from_trained(model)))
  finally:
    textattack_logger.removeHandler(handler)
    textattack_logger.setLevel(level)
  assert not [m for m in messages if "Unknown if model" in m]
  assert [m for m in messages if "compatible with model PredictionBridge" in m]
