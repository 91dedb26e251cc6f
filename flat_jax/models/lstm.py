"""One-layer unidirectional LSTM; tanh, max-pool over the real time steps, tanh (the authors' head)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from flat_jax.models.dropout import Dropout


class LSTMEncoder(nn.Module):
  hidden: int = 300
  dropout: float = 0.2

  @nn.compact
  def __call__(self, embedded, token_mask, *, deterministic: bool):
    embedded = Dropout(self.dropout)(embedded, deterministic=deterministic)
    outputs = nn.RNN(nn.OptimizedLSTMCell(self.hidden), name="lstm")(embedded)
    outputs = jnp.tanh(outputs)
    # Padding is trailing and the LSTM runs left to right, so real steps never see it; it is only
    # kept out of the pool (the authors pool over the padded length).
    outputs = jnp.where(token_mask[..., None], outputs, -jnp.inf)
    pooled = jnp.max(outputs, axis=1)
    pooled = jnp.where(jnp.isfinite(pooled), pooled, 0.0)  # a text with no tokens
    pooled = jnp.tanh(pooled)
    return Dropout(self.dropout)(pooled, deterministic=deterministic)
