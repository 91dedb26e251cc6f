import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from flat_jax.models.bert import (
  BertClassifier,
  BertConfig,
  real_token_mask,
  word_ids_from_pieces,
  word_max,
)
from flat_jax.models.checkpoints_hf import load_hf_checkpoint
from flat_jax.models.word_mask import WordMask
from hf_reference import FORMATS, max_abs_diff, padded_batch, perturb_, save, torch_ids

TOL = 1e-5
CLS, SEP = 1, 2


def tiny_hf_config(**overrides):
  fields = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
    num_labels=3,
  )
  return transformers.BertConfig(**{**fields, **overrides})


@pytest.fixture(scope="module")
def hf_bert():
  torch.manual_seed(0)
  return perturb_(transformers.BertForSequenceClassification(tiny_hf_config()))


@pytest.mark.parametrize("fmt", FORMATS)
def test_parity_with_hf_bert(hf_bert, fmt, tmp_path):
  save(hf_bert, tmp_path, fmt)
  arch, pretrained, _ = load_hf_checkpoint(tmp_path, with_tokenizer=False)
  assert arch == BertConfig.from_hf(hf_bert.config.to_dict())
  ids, mask = padded_batch(99, [9, 5, 3, 7], cls_id=CLS, sep_id=SEP)
  token_types = np.zeros_like(ids)
  token_types[0, 4:9] = 1

  with torch.no_grad():
    t_ids, t_mask, t_types = torch_ids(ids, mask, token_types)
    ref = hf_bert.bert(input_ids=t_ids, attention_mask=t_mask, token_type_ids=t_types)
    ref_logits = hf_bert(input_ids=t_ids, attention_mask=t_mask, token_type_ids=t_types).logits

  model = BertClassifier(arch, 3)
  assert set(pretrained) == {"encoder", "classifier"}
  forward = lambda m, i, t: (*m.encoder(i, None, t), m(i, token_type_ids=t)["logits"])
  hidden, pooled, logits = jax.jit(
    lambda p, i, t: model.apply({"params": p}, i, t, method=forward)
  )(pretrained, ids, token_types)
  diffs = {
    "hidden": max_abs_diff(hidden, ref.last_hidden_state.numpy(), mask),
    "pooled": max_abs_diff(pooled, ref.pooler_output.numpy()),
    "logits": max_abs_diff(logits, ref_logits.numpy()),
  }
  print(f"BERT parity ({fmt}) max abs diff:", diffs)
  assert all(d < TOL for d in diffs.values()), diffs


# ---- the word mask ----


@pytest.fixture(scope="module")
def masked_model():
  arch = BertConfig(
    vocab_size=50,
    hidden_size=16,
    num_layers=2,
    num_heads=2,
    intermediate_size=24,
    max_position=32,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    initializer_range=0.5,
    cls_id=CLS,
    sep_id=SEP,
  )
  model = BertClassifier(arch, 2, WordMask(hidden=8))
  ids, _ = padded_batch(50, [10, 6, 8], cls_id=CLS, sep_id=SEP, seed=1)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(ids))["params"]
  return model, params, jnp.asarray(ids)


def _by_hand(m, ids, mask_values, attention_mask):
  """Classifier logits with given mask values on the embedding-layer output."""
  embedded = m.encoder.embed(m.encoder.embed_words(ids), ids != 0, deterministic=True)
  hidden = m.encoder.encode(embedded * mask_values[..., None], attention_mask, deterministic=True)
  return m.classifier(m.encoder.pool(hidden))


def test_inference_scales_embeddings_by_keep_probability_and_keeps_attention(masked_model):
  model, params, ids = masked_model
  real = real_token_mask(ids, model.config)

  def run(p):
    out = model.apply({"params": p}, ids, deterministic=True)
    keep = model.apply({"params": p}, ids, method=model.phi)
    expected = model.apply(
      {"params": p},
      ids,
      method=lambda m, ids: _by_hand(m, ids, jnp.where(real, keep, 1.0), ids != 0),
    )
    return out, keep, expected

  out, keep, expected = jax.jit(run)(params)
  np.testing.assert_allclose(out["phi"], keep, rtol=1e-6)
  np.testing.assert_array_equal(out["token_mask"], real)
  assert not bool(real[:, 0].any())  # [CLS] is no word
  np.testing.assert_allclose(out["logits"], expected, atol=1e-6)


def test_training_sample_masks_embeddings_and_attention(masked_model):
  model, params, ids = masked_model
  rngs = {"mask": jax.random.PRNGKey(3)}
  out = model.apply({"params": params}, ids, deterministic=False, rngs=rngs)
  real = real_token_mask(ids, model.config)

  def sample(m, ids):
    embedded = m.encoder.embed(m.encoder.embed_words(ids), ids != 0, deterministic=True)
    return m.word_mask(embedded, deterministic=False)[2]

  values = jnp.where(real, model.apply({"params": params}, ids, method=sample, rngs=rngs), 1.0)
  assert set(np.unique(values).tolist()) == {0.0, 1.0}
  dropped = real & (values == 0)
  assert bool(dropped.any())

  attend = (ids != 0) & (values > 0)
  with_attention = model.apply(
    {"params": params}, ids, method=lambda m, ids: _by_hand(m, ids, values, attend)
  )
  np.testing.assert_allclose(out["logits"], with_attention, atol=1e-6)
  embeddings_only = model.apply(
    {"params": params}, ids, method=lambda m, ids: _by_hand(m, ids, values, ids != 0)
  )
  assert np.abs(np.asarray(out["logits"] - embeddings_only)).max() > 1e-4


def test_special_pieces_are_never_masked(masked_model):
  model, params, ids = masked_model
  # a mask that drops every piece: only [CLS] and [SEP] reach the layers, and they stay whole
  drop_all = {
    **params,
    "word_mask": {
      **params["word_mask"],
      "logit_layer": {
        "kernel": jnp.zeros_like(params["word_mask"]["logit_layer"]["kernel"]),
        "bias": jnp.array([30.0, -30.0]),
      },
    },
  }
  special = (ids == CLS) | (ids == SEP)
  out = model.apply(
    {"params": drop_all}, ids, deterministic=False, rngs={"mask": jax.random.PRNGKey(0)}
  )
  expected = model.apply(
    {"params": drop_all},
    ids,
    method=lambda m, ids: _by_hand(m, ids, special.astype(jnp.float32), special),
  )
  np.testing.assert_allclose(out["logits"], expected, atol=1e-6)


def test_word_max_merges_pieces():
  values = jnp.array([0.9, 0.2, 0.7, 0.4, 0.1, 0.6, 0.3])
  word_ids = jnp.array([-1, 0, 0, 1, 2, 2, -1])  # [CLS] un ##like ly ... [SEP]
  np.testing.assert_allclose(word_max(values, word_ids, 4), [0.7, 0.4, 0.6, 0.0])
  grad = jax.grad(lambda v: word_max(v, word_ids, 4).sum())(values)
  np.testing.assert_allclose(grad, [0, 0, 1, 1, 0, 1, 0])
  batched = word_max(jnp.stack([values, values[::-1]]), jnp.stack([word_ids, word_ids]), 4)
  np.testing.assert_allclose(batched[1], [0.6, 0.4, 0.7, 0.0])
  jitted = jax.jit(word_max, static_argnums=2)(values, word_ids, 4)
  np.testing.assert_allclose(jitted, [0.7, 0.4, 0.6, 0.0])


def test_word_importance_gradient_reaches_the_mask(masked_model):
  model, params, ids = masked_model
  word_ids = jnp.where(real_token_mask(ids, model.config), jnp.arange(ids.shape[1]) // 2, -1)

  def loss(p):
    keep = model.apply({"params": p}, ids, method=model.phi)
    return jnp.sum(word_max(keep, word_ids, ids.shape[1]))

  grads = jax.jit(jax.grad(loss))(params)
  assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads["word_mask"]))


def test_word_ids_from_pieces():
  wordpiece = ["[CLS]", "un", "##like", "##ly", "film", "!", "[SEP]", "[PAD]"]
  np.testing.assert_array_equal(word_ids_from_pieces(wordpiece), [-1, 0, 0, 0, 1, 2, -1, -1])
  bpe = ["[CLS]", "un", "like", "ly", "Ġfilm", "[SEP]"]
  np.testing.assert_array_equal(word_ids_from_pieces(bpe), [-1, 0, 0, 0, 1, -1])
  spm = ["[CLS]", "▁un", "like", "▁", "film", "[SEP]"]
  np.testing.assert_array_equal(word_ids_from_pieces(spm), [-1, 0, 0, 1, 1, -1])


def test_no_mask_means_no_keep_prob_and_unit_importance():
  arch = BertConfig(
    vocab_size=30, hidden_size=8, num_layers=1, num_heads=2, intermediate_size=8, max_position=16
  )
  model = BertClassifier(arch, 2)
  ids = jnp.array([[101, 5, 6, 102, 0]])

  def run(rng):
    params = model.init(rng, ids)["params"]
    return (
      params,
      model.apply({"params": params}, ids),
      model.apply({"params": params}, ids, method=model.phi),
    )

  params, out, importance = jax.jit(run)(jax.random.PRNGKey(0))
  assert set(params) == {"encoder", "classifier"}
  assert set(out) == {"logits", "token_mask", "input_mask"}
  np.testing.assert_array_equal(out["token_mask"], [[False, True, True, False, False]])
  np.testing.assert_array_equal(out["input_mask"], [[True, True, True, True, False]])
  np.testing.assert_array_equal(importance, 1.0)


def test_config_from_hf_rejects_relative_positions():
  with pytest.raises(ValueError, match="position_embedding_type"):
    BertConfig.from_hf({**tiny_hf_config().to_dict(), "position_embedding_type": "relative_key"})
  assert dataclasses.replace(BertConfig(vocab_size=5), cls_id=1).cls_id == 1
