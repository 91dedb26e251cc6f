"""Kim (2014) CNN: parallel 1-D convolutions, ReLU, max-pool over time, dropout."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from flat_jax.models.dropout import Dropout


class CNNEncoder(nn.Module):
  kernel_sizes: Sequence[int] = (3, 4, 5)
  num_filters: int = 200
  dropout: float = 0.2

  @nn.compact
  def __call__(self, embedded, token_mask, *, deterministic: bool):
    # Every window that starts on a real token is pooled, and no other: the end is zero-padded by
    # k-1 so such windows exist however short the padded length. The output then does not depend on
    # how far a batch is padded (the attack bridge pads to small buckets; training to max_length).
    starts_on_token = token_mask[..., None].astype(embedded.dtype)
    pooled = []
    for k in self.kernel_sizes:
      padded = jnp.pad(embedded, ((0, 0), (0, k - 1), (0, 0)))
      features = nn.Conv(self.num_filters, kernel_size=(k,), padding="VALID", name=f"conv_{k}")(
        padded
      )
      pooled.append(jnp.max(nn.relu(features) * starts_on_token, axis=1))  # ReLU >= 0: 0 is neutral
    hidden = jnp.concatenate(pooled, axis=-1)
    return Dropout(self.dropout)(hidden, deterministic=deterministic)
