"""The attack bridge: a torch-free callable list[str] -> (N, C) class probabilities.

TextAttack runs on the host and only ever sees this callable. Inside, texts are cleaned and encoded
like the training data, padded to one of a few bucket lengths, and run in batches of one fixed
size through one jitted forward in inference mode (word mask at its keep-probability, no dropout).
Results are cached per text; calls are thread-safe.

With `noise_seed` the model runs in training mode instead (sampled word masks and dropout), as the
authors' training-round attacks did (their defect 6, kept as a switch to explain their numbers).
The noise of a text is keyed by the seed and the text itself, so a text's probabilities are still
one fixed function of the text (the cache and the one-shape rule keep holding) while two texts, even
one word apart, see independent noise.

With `temperature` T the probabilities are softmax(logits / T). The prediction is unchanged, but a
model whose logits are far apart (margins of 100 and more, as cross-entropy on probabilities trains
them) has float32 probabilities of exactly 1.0: every word deletion and substitution then scores the
same, and a score-based search (TextFooler, PWWS) is blinded without the model being any more
robust. A temperature calibrated on dev (flat_jax.attacks.calibration) gives the attack back the
ordering it needs. `output="logits"` returns the logits themselves (for that calibration).

Why one batch size: XLA's CPU kernels round differently for different batch shapes (an LSTM's
probabilities for the same text differ in the last bit between a batch of 16 and one of 32; the
CNN's between 1 and 16), while within one shape a row's result depends on neither its position nor
its neighbours. With one size, a text's probabilities depend only on the text, so which texts the
cache already held, how many TextAttack asked for at once, or which process attacked which example
cannot change an attack's outcome (a substitution decided by the last bit did, before).
"""

from __future__ import annotations

import collections
import re
import threading
import zlib
from typing import Callable, Sequence

import jax
import numpy as np

from flat_jax.data.text import clean_text, tokenize
from flat_jax.data.vocab import PAD_ID, UNK_ID
from flat_jax.training.artifacts import TrainedModel


def bucket_sizes(limit: int, smallest: int) -> tuple[int, ...]:
  """Powers of two from `smallest` up to and including `limit`."""
  sizes, size = [], smallest
  while size < limit:
    sizes.append(size)
    size *= 2
  return tuple(sizes) + (limit,)


class PredictionBridge:
  def __init__(
    self,
    predict_fn: Callable,
    params,
    encode: Callable[[str], list[int]],
    max_length: int,
    num_classes: int,
    *,
    batch_size: int = 32,
    cache_size: int = 200_000,
    pad_id: int = PAD_ID,
    noise_seed: int | None = None,
  ):
    """predict_fn(params, ids) -> probabilities; with `noise_seed`, predict_fn(params, ids, keys)
    with one raw PRNG key (uint32[2]) per row."""
    self._predict = jax.jit(predict_fn)
    self._noise_seed = noise_seed
    self._params = params
    self._encode = encode
    self._pad_id = pad_id
    self.num_classes = num_classes
    self.lengths = bucket_sizes(max_length, min(8, max_length))
    self.batch_size = batch_size
    self._cache: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    self._cache_size = cache_size
    self._lock = threading.Lock()
    self.queries = 0  # texts asked for
    self.model_calls = 0  # texts actually run through the model
    self._gradients_of: Callable[[], WordGradients] | None = None
    self._word_gradients: WordGradients | None = None

  @classmethod
  def from_trained(
    cls,
    trained: TrainedModel,
    noise_seed: int | None = None,
    temperature: float = 1.0,
    output: str = "probabilities",
    **kwargs,
  ) -> "PredictionBridge":
    if output not in ("probabilities", "logits"):
      raise ValueError(f"output must be 'probabilities' or 'logits', not {output!r}")
    if not temperature > 0:
      raise ValueError(f"temperature must be > 0, not {temperature}")
    max_length = trained.config.data.max_length
    model = trained.model

    def to_output(logits):
      return logits if output == "logits" else jax.nn.softmax(logits / temperature, axis=-1)

    def predict(params, ids):
      return to_output(model.apply({"params": params}, ids, deterministic=True)["logits"])

    def predict_noisy(params, ids, keys):
      def one(row, key):
        rngs = {"dropout": jax.random.fold_in(key, 0), "mask": jax.random.fold_in(key, 1)}
        return model.apply({"params": params}, row[None], deterministic=False, rngs=rngs)["logits"][
          0
        ]

      return to_output(jax.vmap(one)(ids, keys))

    if noise_seed is not None:
      predict = predict_noisy
      kwargs["noise_seed"] = noise_seed

    text = trained.text
    bridge = cls(
      predict,
      trained.params,
      text.encode,
      max_length,
      trained.num_classes,
      pad_id=text.pad_id,
      **kwargs,
    )
    bridge._gradients_of = lambda: WordGradients(trained, temperature, bridge.lengths)
    return bridge

  @property
  def gradients(self) -> "WordGradients":
    """What gradient attacks (HotFlip) need of a word model, built on first use."""
    if self._word_gradients is None:
      if self._gradients_of is None:
        raise ValueError(
          "this bridge was not made from a trained model (from_trained): no gradients"
        )
      self._word_gradients = self._gradients_of()
    return self._word_gradients

  @property
  def gradient_calls(self) -> int:
    """Gradients computed so far (0 until a gradient attack asks for one)."""
    return 0 if self._word_gradients is None else self._word_gradients.calls

  def _bucket(self, sizes: Sequence[int], n: int) -> int:
    return next((s for s in sizes if s >= n), sizes[-1])

  def _run(self, texts: list[str]) -> np.ndarray:
    encoded = [self._encode(t) for t in texts]
    out = np.empty((len(texts), self.num_classes), np.float32)
    # group by bucket length so short texts are not padded to the longest one in the call
    by_length = collections.defaultdict(list)
    for i, ids in enumerate(encoded):
      by_length[self._bucket(self.lengths, max(1, len(ids)))].append(i)
    for length, rows in sorted(by_length.items()):
      for start in range(0, len(rows), self.batch_size):
        chunk = rows[start : start + self.batch_size]
        ids = np.full((self.batch_size, length), self._pad_id, np.int32)
        for r, i in enumerate(chunk):
          ids[r, : len(encoded[i])] = encoded[i]
        if self._noise_seed is None:
          probs = np.asarray(self._predict(self._params, ids))
        else:
          keys = np.zeros((self.batch_size, 2), np.uint32)
          for r, i in enumerate(chunk):
            keys[r] = self.text_key(texts[i])
          probs = np.asarray(self._predict(self._params, ids, keys))
        out[chunk] = probs[: len(chunk)]
    return out

  def text_key(self, text: str) -> np.ndarray:
    """The raw PRNG key of a text's noise in training mode: (seed, CRC-32 of the text)."""
    return np.array([self._noise_seed % 2**32, zlib.crc32(text.encode("utf-8"))], np.uint32)

  def __call__(self, texts: Sequence[str]) -> np.ndarray:
    texts = list(texts)
    with self._lock:
      self.queries += len(texts)
      missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
      if missing:
        self.model_calls += len(missing)
        for text, probs in zip(missing, self._run(missing)):
          self._cache[text] = probs
        while len(self._cache) > self._cache_size:
          self._cache.popitem(last=False)
      for t in texts:
        self._cache.move_to_end(t)
      return (
        np.stack([self._cache[t] for t in texts])
        if texts
        else np.zeros((0, self.num_classes), np.float32)
      )

  def compiled_shapes(self) -> int:
    """Number of distinct input shapes compiled so far (at most one per bucket length)."""
    return self._predict._cache_size()


class WordGradients:
  """What a gradient attack (HotFlip) needs of a word model: the gradient of the loss at each token's
  embedding, and the embeddings the model reads words with (its own table; <unk> for a word
  outside its vocabulary, as the model would read it).

  The loss is the cross-entropy of the model's own prediction at the bridge's temperature (as
  TextAttack's get_grad: raising it pushes the text away from the current class). One text per call,
  padded to the bridge's bucket lengths: one compile per bucket."""

  def __init__(self, trained: TrainedModel, temperature: float, lengths: Sequence[int]):
    if not hasattr(trained.text, "vocab"):
      raise ValueError(
        "HotFlip's gradients need a word model (lstm or cnn): a word-piece model "
        "reads a substitute as another number of pieces"
      )
    model, vocab = trained.model, trained.text.vocab
    self._vocab, self._lengths = vocab, tuple(lengths)
    self._max_length = trained.config.data.max_length
    self._params = trained.params
    self._table = np.asarray(trained.params["embed"]["embedding"])
    self.calls = 0

    def gradient(params, ids):
      embedded = model.apply({"params": params}, ids, method=model.embed_tokens)

      def loss(e):
        logits = (
          model.apply(
            {"params": params}, e, ids, deterministic=True, method=model.classify_embedded
          )["logits"]
          / temperature
        )
        predicted = jax.lax.stop_gradient(jax.numpy.argmax(logits, -1))
        return -jax.numpy.sum(jax.nn.log_softmax(logits)[jax.numpy.arange(len(ids)), predicted])

      return jax.grad(loss)(embedded)

    self._gradient = jax.jit(gradient)

  def tokens(self, text: str) -> list[str]:
    """The words of `text` as the model reads them (cleaned, tokenised, truncated)."""
    return tokenize(clean_text(text))[: self._max_length]

  def __call__(self, text: str) -> tuple[list[str], np.ndarray]:
    """(tokens, (n_tokens, D) gradient of the loss at each token's embedding)."""
    tokens = self.tokens(text)
    length = next((s for s in self._lengths if s >= max(1, len(tokens))), self._lengths[-1])
    ids = np.full((1, length), PAD_ID, np.int32)
    ids[0, : len(tokens)] = self._vocab.encode(" ".join(tokens), self._max_length)
    self.calls += 1
    return tokens, np.asarray(self._gradient(self._params, ids))[0, : len(tokens)]

  def ids(self, words: Sequence[str]) -> list[int]:
    """The vocabulary id the model reads each (cleaned, single-token) word as; <unk> outside it."""
    return [self._vocab.index.get(w, UNK_ID) for w in words]

  def embeddings(self, words: Sequence[str]) -> np.ndarray:
    """(len(words), D): each word's row of the model's table (a cleaned single token; <unk>
    otherwise)."""
    ids = self.ids(words)
    return self._table[np.asarray(ids, np.int64)] if ids else np.zeros((0, self._table.shape[1]))


def textattack_wrapper(bridge: PredictionBridge):
  """A TextAttack ModelWrapper around the bridge (import textattack only after
  flat_jax.attacks.resources.prepare_textattack_environment())."""
  from textattack.goal_functions import (
    InputReduction,
    TargetedClassification,
    UntargetedClassification,
  )
  from textattack.models.wrappers import ModelWrapper
  from textattack.shared import validators

  # declare the bridge a classifier to TextAttack's goal-function check (else every attack worker
  # warns "Unknown if model of class PredictionBridge compatible with goal function ...")
  declared = rf"^{re.escape(PredictionBridge.__module__)}\.{PredictionBridge.__name__}$"
  for goal in (TargetedClassification, UntargetedClassification, InputReduction):
    globs = validators.MODELS_BY_GOAL_FUNCTION.setdefault(goal, [])
    if declared not in globs:
      globs.append(declared)

  class BridgeModelWrapper(ModelWrapper):
    def __init__(self, bridge):
      self.model = bridge

    def __call__(self, text_input_list, **kwargs):
      return self.model(list(text_input_list))

  return BridgeModelWrapper(bridge)
