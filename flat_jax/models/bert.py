"""BERT in Flax linen with FLAT's variational word mask.

`BertEncoder` computes what Hugging Face's PyTorch `BertModel` computes (absolute position
embeddings, post-LayerNorm layers, tanh pooler on [CLS]); `BertClassifier` adds the head of
`BertForSequenceClassification` (dropout -> Dense on the pooled output). Weights come from a Hugging
Face checkpoint through `flat_jax.models.checkpoints_hf`.

The word mask, shared with DeBERTa (`deberta.py` imports the helpers below):
- It multiplies the embedding-layer output (word + position + type embeddings after LayerNorm and
  dropout), one value per word piece, as the authors did.
- Only real pieces are masked: [CLS], [SEP] and [PAD] always get the value 1. [CLS] carries the
  pooled representation. The authors multiplied every position, [CLS] and [SEP] included.
- The entropy term is over the real pieces (each one a mask variable). Given each piece's word
  index, the forward pass also returns phi per word, the max over its pieces ("word_phi"),
  for the word-level L_imp between an original and its adversarial text.
- Training (`deterministic=False`): the hard 0/1 sample multiplies the embeddings (straight-through
  gradient) and also removes the dropped pieces from attention (the sample is a constant there:
  a gradient through an additive -inf mask would be meaningless).
- Inference: the keep-probability multiplies the embeddings; attention sees every real piece.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flat_jax.models.dropout import Dropout
from flat_jax.models.word_mask import WordMask

ACTIVATIONS: dict[str, Callable] = {
  "gelu": functools.partial(jax.nn.gelu, approximate=False),  # HF "gelu" is the exact erf form
  "gelu_new": functools.partial(jax.nn.gelu, approximate=True),
  "gelu_fast": functools.partial(jax.nn.gelu, approximate=True),
  "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
  "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
  "relu": jax.nn.relu,
  "silu": jax.nn.silu,
  "swish": jax.nn.silu,
  "tanh": jnp.tanh,
}


def activation(name: str) -> Callable:
  if name not in ACTIVATIONS:
    raise ValueError(f"unsupported activation {name!r}; supported: {', '.join(ACTIVATIONS)}")
  return ACTIVATIONS[name]


def dense(
  features: int, initializer_range: float, *, use_bias: bool = True, name: str | None = None
):
  return nn.Dense(
    features, use_bias=use_bias, name=name, kernel_init=nn.initializers.normal(initializer_range)
  )


def layer_norm(eps: float, name: str | None = None):
  # the two-pass variance, as PyTorch computes it: the fast E[x^2] - E[x]^2 costs parity
  return nn.LayerNorm(epsilon=eps, use_fast_variance=False, name=name)


@dataclasses.dataclass(frozen=True)
class BertConfig:
  vocab_size: int
  hidden_size: int = 768
  num_layers: int = 12
  num_heads: int = 12
  intermediate_size: int = 3072
  max_position: int = 512
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  hidden_act: str = "gelu"
  hidden_dropout: float = 0.1
  attention_dropout: float = 0.1
  classifier_dropout: float | None = None  # None: hidden_dropout, as in HF
  initializer_range: float = 0.02
  pad_id: int = 0
  cls_id: int = 101  # [CLS] and [SEP] of the standard BERT vocabularies (cased and uncased)
  sep_id: int = 102

  def __post_init__(self):
    if self.hidden_size % self.num_heads:
      raise ValueError(
        f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}"
      )
    activation(self.hidden_act)

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_heads

  @classmethod
  def from_hf(cls, hf_config: Mapping[str, Any], **overrides) -> "BertConfig":
    """From a Hugging Face BertConfig dict (config.json); `overrides` set fields directly (e.g. the
    tokenizer's cls_id / sep_id)."""
    embedding_type = hf_config.get("position_embedding_type", "absolute")
    if embedding_type != "absolute":
      raise ValueError(
        f"position_embedding_type {embedding_type!r} is not supported (only 'absolute')"
      )
    fields = dict(
      vocab_size=hf_config["vocab_size"],
      hidden_size=hf_config.get("hidden_size", 768),
      num_layers=hf_config.get("num_hidden_layers", 12),
      num_heads=hf_config.get("num_attention_heads", 12),
      intermediate_size=hf_config.get("intermediate_size", 3072),
      max_position=hf_config.get("max_position_embeddings", 512),
      type_vocab_size=hf_config.get("type_vocab_size", 2),
      layer_norm_eps=hf_config.get("layer_norm_eps", 1e-12),
      hidden_act=hf_config.get("hidden_act", "gelu"),
      hidden_dropout=hf_config.get("hidden_dropout_prob", 0.1),
      attention_dropout=hf_config.get("attention_probs_dropout_prob", 0.1),
      classifier_dropout=hf_config.get("classifier_dropout"),
      initializer_range=hf_config.get("initializer_range", 0.02),
      pad_id=hf_config.get("pad_token_id") if hf_config.get("pad_token_id") is not None else 0,
    )
    fields.update(overrides)
    return cls(**fields)


class BertEmbeddings(nn.Module):
  config: BertConfig

  def setup(self):
    c = self.config
    init = nn.initializers.normal(c.initializer_range)
    self.word_embeddings = nn.Embed(c.vocab_size, c.hidden_size, embedding_init=init)
    self.position_embeddings = nn.Embed(c.max_position, c.hidden_size, embedding_init=init)
    if c.type_vocab_size > 0:
      self.token_type_embeddings = nn.Embed(c.type_vocab_size, c.hidden_size, embedding_init=init)
    self.layer_norm = layer_norm(c.layer_norm_eps)
    self.dropout = Dropout(c.hidden_dropout)

  def embed_words(self, ids):
    return self.word_embeddings(ids)

  def __call__(self, word_embedded, token_type_ids=None, *, deterministic: bool):
    length = word_embedded.shape[1]
    x = word_embedded + self.position_embeddings(jnp.arange(length))[None]
    if self.config.type_vocab_size > 0:
      if token_type_ids is None:
        token_type_ids = jnp.zeros(word_embedded.shape[:2], jnp.int32)
      x = x + self.token_type_embeddings(token_type_ids)
    return self.dropout(self.layer_norm(x), deterministic=deterministic)


class BertSelfAttention(nn.Module):
  config: BertConfig

  @nn.compact
  def __call__(self, hidden, attention_mask, *, deterministic: bool):
    """attention_mask: (B, L) bool, the keys every query may attend to."""
    c = self.config
    split = lambda x: x.reshape(x.shape[:-1] + (c.num_heads, c.head_dim))
    q = split(dense(c.hidden_size, c.initializer_range, name="query")(hidden))
    k = split(dense(c.hidden_size, c.initializer_range, name="key")(hidden))
    v = split(dense(c.hidden_size, c.initializer_range, name="value")(hidden))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(c.head_dim).astype(np.float32)
    scores = jnp.where(attention_mask[:, None, None, :], scores, jnp.finfo(scores.dtype).min)
    probs = Dropout(c.attention_dropout)(
      jax.nn.softmax(scores, axis=-1), deterministic=deterministic
    )
    context = jnp.einsum("bhqk,bkhd->bqhd", probs, v)
    return context.reshape(hidden.shape[:-1] + (c.hidden_size,))


class BertLayer(nn.Module):
  config: BertConfig

  @nn.compact
  def __call__(self, hidden, attention_mask, *, deterministic: bool):
    c = self.config
    drop = lambda x: Dropout(c.hidden_dropout)(x, deterministic=deterministic)
    attended = BertSelfAttention(c, name="attention")(
      hidden, attention_mask, deterministic=deterministic
    )
    attended = drop(dense(c.hidden_size, c.initializer_range, name="attention_output")(attended))
    hidden = layer_norm(c.layer_norm_eps, name="attention_norm")(hidden + attended)
    inner = activation(c.hidden_act)(
      dense(c.intermediate_size, c.initializer_range, name="intermediate")(hidden)
    )
    out = drop(dense(c.hidden_size, c.initializer_range, name="output")(inner))
    return layer_norm(c.layer_norm_eps, name="output_norm")(hidden + out)


class BertEncoder(nn.Module):
  """HF BertModel. Split into steps so the word mask can sit between them:
  embed_words -> embed (the embedding-layer output) -> encode (the layers) -> pool."""

  config: BertConfig

  def setup(self):
    c = self.config
    self.embeddings = BertEmbeddings(c)
    self.layers = [BertLayer(c) for _ in range(c.num_layers)]
    self.pooler = dense(c.hidden_size, c.initializer_range)

  def embed_words(self, ids):
    """Word-piece embeddings alone (before position/type embeddings and LayerNorm)."""
    return self.embeddings.embed_words(ids)

  def embed(self, word_embedded, attention_mask, token_type_ids=None, *, deterministic: bool):
    del attention_mask  # BERT's embedding layer does not see the padding (DeBERTa's does)
    return self.embeddings(word_embedded, token_type_ids, deterministic=deterministic)

  def encode(self, embedded, attention_mask, *, deterministic: bool):
    hidden = embedded
    for layer in self.layers:
      hidden = layer(hidden, attention_mask, deterministic=deterministic)
    return hidden

  def pool(self, hidden):
    return jnp.tanh(self.pooler(hidden[:, 0]))

  def __call__(self, ids, attention_mask=None, token_type_ids=None, *, deterministic: bool = True):
    """Returns (last hidden states (B, L, H), pooled (B, H)). The attention mask defaults to
    ids != pad_id (HF's default is all ones)."""
    attention_mask = padding_attention_mask(ids, attention_mask, self.config.pad_id)
    embedded = self.embed(
      self.embed_words(ids), attention_mask, token_type_ids, deterministic=deterministic
    )
    hidden = self.encode(embedded, attention_mask, deterministic=deterministic)
    return hidden, self.pool(hidden)


def padding_attention_mask(ids, attention_mask, pad_id):
  """The given (B, L) mask as bool, or by default every non-padding piece."""
  return (ids != pad_id) if attention_mask is None else attention_mask.astype(bool)


def real_token_mask(ids, config):
  """True at word pieces of the text: not padding, not [CLS] / [SEP]."""
  return (ids != config.pad_id) & (ids != config.cls_id) & (ids != config.sep_id)


def masked_encoding(
  encoder: nn.Module,
  word_mask: WordMask | None,
  word_embedded,
  ids,
  token_type_ids,
  *,
  deterministic: bool,
  word_ids=None,
):
  """Embedding layer -> word mask -> transformer layers, for BERT and DeBERTa encoders.
  Returns (last hidden states, outputs dict with "token_mask" and, with a mask, "phi" per
  piece and "word_phi" (B, L): given word_ids (B, L) (-1 at special and padding pieces) the max
  over each word's pieces, 0 for word indices without pieces; without them phi itself)."""
  embedded = encoder.embed(
    word_embedded, ids != encoder.config.pad_id, token_type_ids, deterministic=deterministic
  )
  return masked_layers(
    encoder, word_mask, embedded, ids, deterministic=deterministic, word_ids=word_ids
  )


def masked_layers(
  encoder: nn.Module,
  word_mask: WordMask | None,
  embedded,
  ids,
  *,
  deterministic: bool,
  word_ids=None,
):
  """masked_encoding from the embedding-layer output on: word mask -> transformer layers."""
  attention_mask = ids != encoder.config.pad_id
  token_mask = real_token_mask(ids, encoder.config)
  # input_mask: every piece the model attends to, [CLS] and [SEP] included (what embedding-space
  # adversaries perturb, as TextDefender's and FreeLB's attention-mask-shaped deltas)
  outputs = {"token_mask": token_mask, "input_mask": attention_mask}
  if word_mask is not None:
    _, phi, values = word_mask(embedded, deterministic=deterministic)
    values = jnp.where(token_mask, values, 1.0)
    embedded = embedded * values[..., None]
    if not deterministic:
      attention_mask = attention_mask & (jax.lax.stop_gradient(values) > 0.5)
    outputs["phi"] = phi
    # without word_ids every piece counts as its own word (as a word model's positions do)
    outputs["word_phi"] = phi if word_ids is None else word_max(phi, word_ids, ids.shape[-1])
  hidden = encoder.encode(embedded, attention_mask, deterministic=deterministic)
  return hidden, outputs


def piece_phi(encoder: nn.Module, word_mask: WordMask | None, ids, token_type_ids):
  """Keep-probability of every piece from the embedding-layer output, with the same position and
  type ids as the forward pass (the authors' importance shifted the positions by one)."""
  if word_mask is None:
    return jnp.ones(ids.shape, jnp.float32)
  embedded = encoder.embed(
    encoder.embed_words(ids), ids != encoder.config.pad_id, token_type_ids, deterministic=True
  )
  return word_mask.phi(embedded)


class BertClassifier(nn.Module):
  """HF BertForSequenceClassification with an optional variational word mask (mode flat).

  Outputs {"logits" (B, C), "token_mask" (B, L) real pieces, "phi" (B, L) with a mask}."""

  config: BertConfig
  num_classes: int
  word_mask: WordMask | None = None

  # texts x path points per IG gradient evaluation: a transformer's activations are large
  ig_rows = 128

  def setup(self):
    c = self.config
    self.encoder = BertEncoder(c)
    dropout = c.hidden_dropout if c.classifier_dropout is None else c.classifier_dropout
    self.dropout = Dropout(dropout)
    self.classifier = dense(self.num_classes, c.initializer_range)

  def __call__(
    self, ids, *, deterministic: bool = True, token_type_ids=None, word_ids=None, perturbation=None
  ):
    """perturbation: added to the word-piece embeddings (embedding-space adversarial training)."""
    embedded = self.embed_tokens(ids)
    if perturbation is not None:
      embedded = embedded + perturbation
    return self.classify_embedded(
      embedded, ids, deterministic=deterministic, token_type_ids=token_type_ids, word_ids=word_ids
    )

  def embed_tokens(self, ids):
    """Word-piece embeddings before position embeddings and the mask: the input space of IG."""
    return self.encoder.embed_words(ids)

  def classify_embedded(
    self, word_embedded, ids, *, deterministic: bool = True, token_type_ids=None, word_ids=None
  ):
    """The forward pass from word-piece embeddings; ids give the padding and special pieces."""
    hidden, outputs = masked_encoding(
      self.encoder,
      self.word_mask,
      word_embedded,
      ids,
      token_type_ids,
      deterministic=deterministic,
      word_ids=word_ids,
    )
    return self._head(hidden, outputs, deterministic)

  def _head(self, hidden, outputs, deterministic: bool):
    """Pooled [CLS] -> dropout -> classifier: outputs["logits"]."""
    pooled = self.dropout(self.encoder.pool(hidden), deterministic=deterministic)
    outputs["logits"] = self.classifier(pooled)
    return outputs

  def phi(self, ids, token_type_ids=None):
    return piece_phi(self.encoder, self.word_mask, ids, token_type_ids)

  def ig_inputs(self, ids):
    """The input space of Integrated Gradients: the word-piece embeddings (position and type
    embeddings join them before the embedding LayerNorm, so a path from zero is a real path)."""
    return self.embed_tokens(ids)

  def classify_ig_inputs(self, inputs, ids):
    return self.classify_embedded(inputs, ids, deterministic=True)


# ---- word pieces -> words ----


def word_max(piece_values, word_ids, num_words: int):
  """Merge piece values into word values by max. piece_values (..., L) float, word_ids (..., L) int
  with -1 for special and padding pieces; returns (..., num_words), 0 for words without pieces.
  Differentiable (the gradient goes to the maximal piece) and jit-friendly (num_words is static)."""
  word_ids = jnp.asarray(word_ids)
  belongs = word_ids[..., :, None] == jnp.arange(num_words)  # (..., L, W)
  floor = jnp.finfo(piece_values.dtype).min
  merged = jnp.max(jnp.where(belongs, piece_values[..., :, None], floor), axis=-2)
  return jnp.where(jnp.any(belongs, axis=-2), merged, 0.0)


def word_ids_from_encoding(encoding, index: int = 0) -> np.ndarray:
  """Piece -> word index from a Hugging Face fast tokenizer's output (`BatchEncoding.word_ids`),
  -1 for special and padding pieces. Tokenize whitespace-split words with is_split_into_words=True
  to index the text's own words (otherwise the tokenizer's pre-tokenizer decides what a word is,
  e.g. it splits punctuation off)."""
  return np.array([-1 if w is None else w for w in encoding.word_ids(index)], np.int32)


def word_ids_from_pieces(
  pieces: Sequence[str],
  special_tokens: Sequence[str] = ("[CLS]", "[SEP]", "[PAD]"),
  scheme: str = "auto",
) -> np.ndarray:
  """Piece -> word index from the pieces' spelling, -1 for special tokens.

  scheme "wordpiece": a piece starting with '##' continues the previous word (BERT);
  "sentencepiece" / "bpe": a piece starting with '▁' / 'Ġ' starts a new word, any other continues
  it (DeBERTa v2-v3 / v1); the first piece after a special token always starts a word (GPT-2 BPE
  writes no 'Ġ' on a text's first word). "auto" picks by the markers present."""
  special = set(special_tokens)
  if scheme == "auto":
    real = [p for p in pieces if p not in special]
    scheme = (
      "sentencepiece"
      if any(p.startswith("▁") for p in real)
      else "bpe"
      if any(p.startswith("Ġ") for p in real)
      else "wordpiece"
    )
  marker = {"sentencepiece": "▁", "bpe": "Ġ"}.get(scheme)
  if marker is None and scheme != "wordpiece":
    raise ValueError(f"unknown scheme {scheme!r}; expected auto, wordpiece, sentencepiece or bpe")
  ids, word, after_special = [], -1, True
  for piece in pieces:
    if piece in special:
      ids.append(-1)
      after_special = True
      continue
    starts = (not piece.startswith("##")) if marker is None else piece.startswith(marker)
    if starts or after_special or word < 0:
      word += 1
    ids.append(word)
    after_special = False
  return np.array(ids, np.int32)


def encode_words(tokenizer, words: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
  """Tokenize one text given as words with a fast tokenizer: (ids (max_length,) padded,
  word_ids (max_length,) with -1 at special and padding pieces). Truncates to max_length pieces."""
  encoding = tokenizer(
    list(words),
    is_split_into_words=True,
    truncation=True,
    max_length=max_length,
    padding="max_length",
  )
  return np.array(encoding["input_ids"], np.int32), word_ids_from_encoding(encoding)
