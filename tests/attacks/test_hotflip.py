"""HotFlip against the small SST-2 CNN: the word alignment, the first-order ranking (its sign and
its use of the gradient), and whole attacks within HotFlip's constraints."""

import jax
import numpy as np
import optax
import pytest

from flat_jax.attacks import hotflip, resources
from flat_jax.attacks.bridge import PredictionBridge
from flat_jax.attacks.generate import AttackJob, attack_examples, summarize
from flat_jax.data.vocab import PAD_ID
from flat_jax.training.artifacts import load_trained


def test_textattack_words_find_their_model_tokens():
  # TextAttack's words drop punctuation the model keeps; a contraction is two model tokens
  words = ["It", "isn't", "a", "good", "film", "really"]
  tokens = ["it", "is", "n't", "a", "good", "(", "film", ")", ",", "really"]
  assert hotflip.align_words(words, tokens) == [0, None, 3, 4, 6, 9]
  # a word the model's tokens lack (truncated text) has no position
  assert hotflip.align_words(["good", "film"], ["good"]) == [0, None]


def test_first_order_scores_are_the_embedding_difference_along_the_gradient():
  gradient = np.array([1.0, -2.0])
  current = np.array([0.5, 0.5])
  candidates = np.array([[1.5, 0.5], [0.5, 1.5], [0.5, -0.5]])
  np.testing.assert_allclose(
    hotflip.first_order_scores(gradient, current, candidates), [1.0, -2.0, 2.0]
  )


@pytest.fixture(scope="module")
def victim(model_dir):
  trained = load_trained(model_dir)
  return trained, PredictionBridge.from_trained(trained)


def _loss_fn(trained):
  """Cross-entropy of one text (ids padded to the model's length: one compile)."""
  length = trained.config.data.max_length

  @jax.jit
  def loss(ids, label):
    logits = trained.model.apply({"params": trained.params}, ids[None])["logits"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, label[None])[0]

  return lambda ids, label: float(
    loss(np.asarray(ids + [PAD_ID] * (length - len(ids)), np.int32), np.asarray(label))
  )


def test_the_top_ranked_flips_raise_the_loss_more_than_the_bottom_ranked(victim, sst2_splits):
  """The estimate uses the gradient of the predicted class's loss at each word: flipping the words
  it ranks first must, on average over texts, raise the true loss more than those it ranks last (a
  wrong sign or position would reverse or scramble this)."""
  trained, bridge = victim
  vocab, loss = trained.text.vocab, _loss_fn(trained)
  rng = np.random.RandomState(0)
  top, bottom = [], []
  for text in sst2_splits.test.texts[:20]:
    tokens, grad = bridge.gradients(text)
    ids = vocab.encode(" ".join(tokens), len(tokens))
    label = int(np.argmax(bridge([text])[0]))
    base = loss(ids, label)
    flips = [
      (p, w) for p in range(len(tokens)) for w in rng.choice(len(vocab) - 2, 20, replace=False) + 2
    ]
    current = bridge.gradients.embeddings([tokens[p] for p, _ in flips])
    table = bridge.gradients.embeddings([vocab.words[w] for _, w in flips])
    scores = np.einsum("nd,nd->n", table - current, grad[[p for p, _ in flips]])
    order = np.argsort(-scores)

    def change(k):
      p, w = flips[k]
      return loss(ids[:p] + [int(w)] + ids[p + 1 :], label) - base

    top.append(np.mean([change(k) for k in order[:3]]))
    bottom.append(np.mean([change(k) for k in order[-3:]]))
  assert np.mean(top) > 0 > np.mean(bottom)
  assert np.mean(np.asarray(top) > np.asarray(bottom)) >= 0.8
  assert bridge.gradients.calls == 20


def test_hotflip_attacks_within_its_constraints(model_dir, sst2_splits, tmp_path):
  test = sst2_splits.test
  records = attack_examples(
    AttackJob(str(model_dir), "hotflip"),
    test.texts,
    test.labels,
    tmp_path / "hotflip.jsonl",
    indices=range(12),
  )
  summary = summarize(records)
  assert summary["success_rate"] > 0 and summary["accuracy"] < summary["original_accuracy"]
  assert summary["avg_gradient_calls"] >= 1
  space = resources.load_synonym_embedding()
  for r in records:
    if r["status"] == "skipped":
      assert "gradient_calls" not in r  # a misclassified text is never attacked
      continue
    assert r["gradient_calls"] >= 1
    if r["status"] == "successful":
      assert 1 <= len(r["replaced"]) <= hotflip.MAX_WORDS and r["perturbed_output"] != r["label"]
      for _, old, new in r["replaced"]:
        assert space.get_cos_sim(old, new) >= resources.SYNONYM_MIN_COS - 1e-6, (old, new)


def test_a_word_piece_model_with_hotflip_is_refused_before_training():
  from flat_jax import pipeline
  from flat_jax.config import preset

  config = preset("sst2", "bert")
  config.eval.attacks = ("textfooler", "hotflip")
  with pytest.raises(pipeline.RunError, match="hotflip needs a word model"):
    pipeline._check_supported(config)
  config.model.name = "cnn"
  pipeline._check_supported(config)  # word models take it


class _FakeGradients:
  """Known gradient and embeddings: each word's embedding is a fixed random vector."""

  def __init__(self, tokens, grad):
    self._tokens, self._grad = tokens, grad
    self.table, self.calls = {}, 0

  def __call__(self, text):
    self.calls += 1
    return self._tokens, self._grad

  def ids(self, words):
    return [0 if w == "oovword" else 1 + hash(w) % 10**6 for w in words]

  def embeddings(self, words):
    for w in words:
      self.table.setdefault(w, np.random.RandomState(len(self.table)).normal(size=4))
    return np.stack([self.table[w] for w in words])


def test_the_transformation_returns_the_top_flips_by_the_first_order_estimate():
  resources.prepare_textattack_environment()
  from textattack.shared import AttackedText

  space = resources.load_synonym_embedding()
  text = AttackedText("the movie was good and funny")
  tokens = ["the", "movie", "was", "good", "and", "funny"]
  grad = np.random.RandomState(1).normal(size=(len(tokens), 4))
  fake = _FakeGradients(tokens, grad)
  swap = hotflip.gradient_synonym_swap(
    type("Bridge", (), {"gradients": fake})(), space, 0.8, top_n=3
  )
  out = swap._get_transformations(text, {1, 3, 5})
  # every synonym flip of the three words, scored by hand
  scored = []
  for i in (1, 3, 5):
    for c in swap._get_replacement_words(tokens[i]):
      if c != tokens[i] and space.get_cos_sim(tokens[i], c) >= 0.8:
        scored.append(
          (float((fake.embeddings([c])[0] - fake.embeddings([tokens[i]])[0]) @ grad[i]), i, c)
        )
  scored.sort(key=lambda x: -x[0])
  assert len(scored) > 3 and fake.calls == 1
  assert [t.words for t in out] == [
    text.replace_word_at_index(i, c).words for _, i, c in scored[:3]
  ]
