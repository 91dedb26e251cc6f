"""Word-level text classifier: frozen pretrained embeddings -> encoder -> logits."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from flat_jax.data.vocab import PAD_ID
from flat_jax.models.cnn import CNNEncoder
from flat_jax.models.lstm import LSTMEncoder


class WordClassifier(nn.Module):
  """The embedding table lives at params['embed']['embedding']; `with_embedding` puts the
  pretrained matrix there after init (a numpy array is no Module field: modules must hash)."""
  encoder: nn.Module
  vocab_size: int
  embed_dim: int
  num_classes: int

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.embed_dim)
    self.head = nn.Dense(self.num_classes)

  def __call__(self, ids, *, deterministic: bool = True):
    token_mask = ids != PAD_ID
    embedded = self.embed(ids)
    hidden = self.encoder(embedded, token_mask, deterministic=deterministic)
    return {"logits": self.head(hidden)}


def with_embedding(params, embedding: np.ndarray):
  if params["embed"]["embedding"].shape != embedding.shape:
    raise ValueError(f"embedding matrix {embedding.shape} does not fit the model "
                     f"{params['embed']['embedding'].shape}")
  return {**params, "embed": {"embedding": jnp.asarray(embedding, jnp.float32)}}


def build_word_classifier(model_config, vocab_size: int, num_classes: int, embed_dim: int) -> WordClassifier:
  if model_config.name == "cnn":
    encoder = CNNEncoder(tuple(model_config.cnn_kernel_sizes), model_config.cnn_num_filters,
                         model_config.dropout)
  elif model_config.name == "lstm":
    encoder = LSTMEncoder(model_config.lstm_hidden, model_config.dropout)
  else:
    raise ValueError(f"not a word-level model: {model_config.name}")
  return WordClassifier(encoder, vocab_size, embed_dim, num_classes)
