"""Kim (2014) CNN: parallel 1-D convolutions, ReLU, max-pool over time, dropout."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class CNNEncoder(nn.Module):
  kernel_sizes: Sequence[int] = (3, 4, 5)
  num_filters: int = 200
  dropout: float = 0.2

  @nn.compact
  def __call__(self, embedded, token_mask, *, deterministic: bool):
    del token_mask  # <pad> embeddings are zero; like Kim (2014) the pool runs over the padded length
    pooled = []
    for k in self.kernel_sizes:
      features = nn.Conv(self.num_filters, kernel_size=(k,), padding="VALID", name=f"conv_{k}")(embedded)
      pooled.append(jnp.max(nn.relu(features), axis=1))
    hidden = jnp.concatenate(pooled, axis=-1)
    return nn.Dropout(self.dropout)(hidden, deterministic=deterministic)
