"""Integrated Gradients over word pieces: the offline MiniLM BERT and a small random DeBERTa, on real
SST-2 sentences, with and without the word mask."""

import gzip
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flat_jax.config import preset
from flat_jax.data.batching import PaddingTrim, length_buckets
from flat_jax.data.pieces import PieceEncoder
from flat_jax.interpret.ig import make_integrated_gradients, merge_to_words
from flat_jax.models import transformer

NUM_TEXTS, MAX_LENGTH, STEPS = 8, 64, 50


def _model(name, with_mask):
  model_config = preset("sst2", name).model
  model_config.from_scratch = name == "deberta"
  model_config.scratch_hidden, model_config.scratch_layers = 64, 2
  model_config.scratch_heads, model_config.scratch_intermediate = 4, 128
  source = transformer.load_source(model_config)
  model = transformer.build(source.arch, 2, model_config, with_mask=with_mask)
  params = transformer.init_params(model, source, seed=0)
  rng = np.random.default_rng(0)
  if source.pretrained is None:  # random weights of init scale barely let the input reach [CLS]
    params = jax.tree.map(lambda a: a + rng.normal(0, 0.2, a.shape).astype(np.float32), params)
  # a classifier head far from its 0.02 init, so that the class probability moves along the path
  head, head_scale = params["classifier"]["kernel"], 1.0 if source.pretrained is not None else 0.3
  params = {
    **params,
    "classifier": {
      **params["classifier"],
      "kernel": jnp.asarray(rng.normal(0, head_scale, head.shape), jnp.float32),
    },
  }
  return model, params, PieceEncoder(source.tokenizer, MAX_LENGTH)


@pytest.fixture(scope="module")
def texts(shared_data):
  with gzip.open(shared_data / "sst2" / "test.jsonl.gz", "rt", encoding="utf-8") as f:
    return [json.loads(line)["text"] for _, line in zip(range(NUM_TEXTS), f)]


@pytest.mark.parametrize("name,with_mask", [("bert", False), ("bert", True), ("deberta", True)])
def test_completeness_on_word_pieces(texts, name, with_mask):
  model, params, pieces = _model(name, with_mask)
  ids, word_ids = pieces.encode_batch(texts)
  cut = PaddingTrim(pieces.pad_id, length_buckets(MAX_LENGTH))({"ids": ids, "word_ids": word_ids})
  ids, word_ids = cut["ids"], cut["word_ids"]
  assert (ids == pieces.pad_id).any()  # padding in the batch
  real = word_ids >= 0  # [CLS], [SEP] and padding stay on the path's ends
  embed_fn = lambda p, x: model.apply({"params": p}, x, method=model.ig_inputs)
  logits_fn = lambda p, e, x, m: model.apply({"params": p}, e, x, method=model.classify_ig_inputs)[
    "logits"
  ]
  ig = make_integrated_gradients(embed_fn, logits_fn, STEPS, batch_chunk=16)
  out = jax.device_get(ig(params, jnp.asarray(ids), jnp.asarray(real)))
  diff, delta = out["f_input"] - out["f_baseline"], out["delta"]
  clear = np.abs(diff) > 0.05
  assert clear.sum() >= NUM_TEXTS // 2, diff
  assert np.all(np.abs(delta[clear]) <= 0.01 * np.abs(diff[clear])), delta[clear] / diff[clear]
  assert np.all(out["attributions"][~real] == 0.0)
  # words: each word's pieces summed, nothing lost
  words = merge_to_words(out["attributions"], word_ids, ids.shape[1])
  np.testing.assert_allclose(words.sum(-1), out["attributions"].sum(-1), atol=1e-6)
  assert [int(w.max()) + 1 for w in word_ids] == [len(pieces.words(t)) for t in texts]
