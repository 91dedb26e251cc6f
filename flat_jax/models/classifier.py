"""Word-level text classifier: frozen pretrained embeddings -> encoder -> logits."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from flat_jax.data.vocab import PAD_ID
from flat_jax.models.cnn import CNNEncoder
from flat_jax.models.lstm import LSTMEncoder
from flat_jax.models.word_mask import WordMask


class WordClassifier(nn.Module):
  """The embedding table lives at params['embed']['embedding']; `with_embedding` puts the
  pretrained matrix there after init (a numpy array is no Module field: modules must hash).

  With `word_mask` set (mode=flat) the variational word mask sits between the embeddings and the
  encoder; without it every mask value is 1 (modes base and adv)."""

  encoder: nn.Module
  vocab_size: int
  embed_dim: int
  num_classes: int
  word_mask: WordMask | None = None

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.head = nn.Dense(self.num_classes)

  # texts x path points per gradient evaluation of Integrated Gradients: all at once (a word
  # model's activations are small)
  ig_rows = None

  def __call__(self, ids, *, deterministic: bool = True, word_ids=None, perturbation=None):
    """word_ids: unused (a position is a word); taken so that every classifier reads the same
    inputs. perturbation: added to the word embeddings (embedding-space adversarial training)."""
    embedded = self.embed_tokens(ids)
    if perturbation is not None:
      embedded = embedded + perturbation
    return self.classify_embedded(embedded, ids, deterministic=deterministic)

  def embed_tokens(self, ids):
    """Word embeddings of ids (before the mask): the input space of Integrated Gradients.
    <pad> is always the zero vector, even when the embeddings are trained."""
    return self.embed(ids) * (ids != PAD_ID)[..., None]

  def classify_embedded(self, embedded, ids, *, deterministic: bool = True):
    """The rest of the forward pass from word embeddings: mask (if any), encoder, head; ids give
    the padding."""
    token_mask = ids != PAD_ID
    outputs = {"token_mask": token_mask}
    if self.word_mask is not None:
      embedded, phi, _ = self.word_mask(embedded, deterministic=deterministic)
      outputs["phi"] = phi
      outputs["word_phi"] = phi  # a position is a word
    hidden = self.encoder(embedded, token_mask, deterministic=deterministic)
    outputs["logits"] = self.head(hidden)
    return outputs

  def ig_inputs(self, ids):
    """The input space of Integrated Gradients: the word embeddings."""
    return self.embed_tokens(ids)

  def classify_ig_inputs(self, inputs, ids):
    return self.classify_embedded(inputs, ids, deterministic=True)

  def phi(self, ids):
    """Global importance phi of vocabulary ids: keep-probability from each word's embedding alone."""
    if self.word_mask is None:
      return jnp.ones(ids.shape, jnp.float32)
    return self.word_mask.phi(self.embed(ids))


def with_embedding(params, embedding: np.ndarray):
  if params["embed"]["embedding"].shape != embedding.shape:
    raise ValueError(
      f"embedding matrix {embedding.shape} does not fit the model "
      f"{params['embed']['embedding'].shape}"
    )
  return {**params, "embed": {"embedding": jnp.asarray(embedding, jnp.float32)}}


def build_word_classifier(
  model_config, vocab_size: int, num_classes: int, embed_dim: int, *, with_mask: bool = False
) -> WordClassifier:
  if model_config.name == "cnn":
    encoder = CNNEncoder(
      tuple(model_config.cnn_kernel_sizes), model_config.cnn_num_filters, model_config.dropout
    )
  elif model_config.name == "lstm":
    encoder = LSTMEncoder(model_config.lstm_hidden, model_config.dropout)
  else:
    raise ValueError(f"not a word-level model: {model_config.name}")
  mask = WordMask(model_config.mask_hidden, model_config.mask_temperature) if with_mask else None
  return WordClassifier(encoder, vocab_size, embed_dim, num_classes, mask)
