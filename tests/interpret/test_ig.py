"""Integrated Gradients on randomly initialised CNN/LSTM classifiers over real SST-2 sentences."""

import functools
import gzip
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flat_jax.config import preset
from flat_jax.data.vocab import PAD_ID, UNK_ID, Vocab
from flat_jax.interpret.ig import (
  attributions_by_class,
  integrated_gradients_loop,
  make_integrated_gradients,
  merge_to_words,
  path_points,
)
from flat_jax.models.classifier import build_word_classifier, with_embedding

NUM_TEXTS, MAX_LENGTH, EMBED_DIM, STEPS = 8, 50, 50, 50
MODELS = [("cnn", False), ("cnn", True), ("lstm", False), ("lstm", True)]


@pytest.fixture(scope="module")
def batch(shared_data):
  with gzip.open(shared_data / "sst2" / "test.jsonl.gz", "rt", encoding="utf-8") as f:
    texts = [json.loads(line)["text"] for _, line in zip(range(NUM_TEXTS), f)]
  vocab = Vocab.build(texts)
  ids, lengths = vocab.encode_batch(texts, MAX_LENGTH)
  assert lengths.min() < MAX_LENGTH  # some padding to check
  return vocab, jnp.asarray(ids), jnp.asarray(ids != PAD_ID)


@functools.cache
def _setup(name, with_mask, vocab_size):
  model = build_word_classifier(
    preset("sst2", name).model, vocab_size, 2, EMBED_DIM, with_mask=with_mask
  )
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, MAX_LENGTH), jnp.int32))["params"]
  matrix = np.random.RandomState(0).normal(size=(vocab_size, EMBED_DIM)).astype(np.float32)
  # the <pad> row is random too: padding gets no attribution by the path, whatever its embedding
  params = with_embedding(params, matrix)
  embed_fn = lambda p, ids: model.apply({"params": p}, ids, method=model.embed_tokens)
  logits_fn = lambda p, e, ids, m: model.apply(
    {"params": p}, e, ids, deterministic=True, method=model.classify_embedded
  )["logits"]
  return params, embed_fn, logits_fn, make_integrated_gradients(embed_fn, logits_fn, STEPS)


def setup_model(batch, name, with_mask):
  return _setup(name, with_mask, len(batch[0]))


@pytest.mark.parametrize("name,with_mask", MODELS)
def test_completeness(batch, name, with_mask):
  _, ids, mask = batch
  params, _, _, ig = setup_model(batch, name, with_mask)
  out = ig(params, ids, mask)
  diff = np.asarray(out["f_input"] - out["f_baseline"])
  delta = np.asarray(out["delta"])
  np.testing.assert_allclose(delta, np.asarray(out["attributions"]).sum(-1) - diff, atol=1e-6)
  clear = np.abs(diff) > 0.05  # relative error is meaningless where f barely moves
  assert clear.sum() >= NUM_TEXTS // 2, diff
  assert np.all(np.abs(delta[clear]) <= 0.01 * np.abs(diff[clear])), delta[clear] / diff[clear]


@pytest.mark.parametrize("name,with_mask", MODELS)
def test_vectorised_matches_python_loop(batch, name, with_mask):
  _, ids, mask = batch
  params, embed_fn, logits_fn, ig = setup_model(batch, name, with_mask)
  labels = jnp.arange(NUM_TEXTS) % 2
  fast = ig(params, ids, mask, labels)
  loop = integrated_gradients_loop(embed_fn, logits_fn, params, ids, mask, labels, steps=STEPS)
  # rtol: a max-pool near-tie may break the other way under the batch's different float rounding,
  # moving ~1e-5 between two positions
  for key in ("attributions", "f_input", "f_baseline", "delta"):
    np.testing.assert_allclose(fast[key], loop[key], atol=1e-5, rtol=2e-3, err_msg=key)


def test_chunked_path_matches(batch):
  _, ids, mask = batch
  params, embed_fn, logits_fn, ig = setup_model(batch, "cnn", True)
  # chunks that do not divide the steps: the padded points carry no weight
  chunked = make_integrated_gradients(embed_fn, logits_fn, STEPS, batch_chunk=7)
  np.testing.assert_allclose(
    chunked(params, ids, mask)["attributions"], ig(params, ids, mask)["attributions"], atol=1e-6
  )


@pytest.mark.parametrize("name,with_mask", [("cnn", True), ("lstm", False)])
def test_padding_gets_zero_attribution(batch, name, with_mask):
  _, ids, mask = batch
  params, _, _, ig = setup_model(batch, name, with_mask)
  attr = np.asarray(ig(params, ids, mask)["attributions"])
  assert attr.shape == ids.shape
  assert np.all(attr[~np.asarray(mask)] == 0.0)
  assert np.all(np.abs(attr).sum(-1) > 0)


def test_predicted_class_by_default_and_classes_mirror(batch):
  _, ids, mask = batch
  params, embed_fn, logits_fn, ig = setup_model(batch, "cnn", False)
  out = ig(params, ids, mask)
  predicted = jnp.argmax(logits_fn(params, embed_fn(params, ids), ids, mask), -1)
  np.testing.assert_array_equal(out["labels"], predicted)
  np.testing.assert_allclose(
    out["f_input"],
    jax.nn.softmax(logits_fn(params, embed_fn(params, ids), ids, mask))[
      jnp.arange(NUM_TEXTS), predicted
    ],
    rtol=1e-6,
  )
  # two classes: p0 = 1 - p1, so the class-0 attributions are the class-1 ones negated
  both = attributions_by_class(ig, params, ids, mask, 2)
  assert both.shape == (NUM_TEXTS, 2, MAX_LENGTH)
  np.testing.assert_allclose(both[:, 0], -both[:, 1], atol=1e-6)


def test_custom_baseline(batch):
  _, ids, mask = batch
  params, embed_fn, logits_fn, _ = setup_model(batch, "cnn", True)
  unk = lambda embedded, ids, mask: embed_fn(params, jnp.full_like(ids, UNK_ID))
  out = make_integrated_gradients(embed_fn, logits_fn, STEPS, baseline=unk)(params, ids, mask)
  # the baseline replaces real tokens only; padding stays what it is
  base_ids = jnp.where(mask, UNK_ID, ids)
  f_base = jax.nn.softmax(logits_fn(params, embed_fn(params, base_ids), base_ids, mask))
  np.testing.assert_allclose(
    out["f_baseline"], f_base[jnp.arange(NUM_TEXTS), out["labels"]], rtol=1e-5
  )
  assert np.all(np.asarray(out["attributions"])[~np.asarray(mask)] == 0.0)
  # off the zero point the path crosses many ReLU / max-pool switches: a looser quadrature bound
  diff = np.asarray(out["f_input"] - out["f_baseline"])
  clear = np.abs(diff) > 0.05
  assert clear.any()
  assert np.all(np.abs(np.asarray(out["delta"])[clear]) <= 0.05 * np.abs(diff[clear]))


def test_path_points():
  for rule, steps in (("midpoint", 1), ("midpoint", 50), ("trapezoid", 2), ("trapezoid", 50)):
    alphas, weights = path_points(steps, rule)
    assert alphas.shape == weights.shape == (steps,)
    assert abs(weights.sum() - 1.0) < 1e-6 and alphas.min() >= 0.0 and alphas.max() <= 1.0
  np.testing.assert_allclose(path_points(4, "midpoint")[0], [0.125, 0.375, 0.625, 0.875])
  np.testing.assert_allclose(path_points(3, "trapezoid")[1], [0.25, 0.5, 0.25])
  with pytest.raises(ValueError):
    path_points(1, "trapezoid")
  with pytest.raises(ValueError):
    path_points(10, "simpson")


def test_merge_to_words_numpy_and_jax():
  pieces = np.array([[0.5, 1.0, 2.0, -1.0, 4.0, 9.0], [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]])
  word_ids = np.array([[-1, 0, 0, 1, 2, -1], [-1, 0, 1, 1, -1, -1]])
  expected = np.array([[3.0, -1.0, 4.0], [1.0, 2.0, 0.0]])
  merged = merge_to_words(pieces, word_ids, 3)
  assert isinstance(merged, np.ndarray)
  np.testing.assert_allclose(merged, expected)
  merged_jax = jax.jit(merge_to_words, static_argnums=2)(
    jnp.asarray(pieces), jnp.asarray(word_ids), 3
  )
  assert isinstance(merged_jax, jax.Array)
  np.testing.assert_allclose(merged_jax, expected, rtol=1e-6)
