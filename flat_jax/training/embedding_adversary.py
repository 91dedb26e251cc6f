"""Embedding-space adversarial training: PGD-K (Madry et al. 2018, on word embeddings) and FreeLB
(Zhu et al., ICLR 2020). No attack search: a perturbation delta of each text's word embeddings is
found by K gradient-ascent steps on the loss inside the jitted train step.

Where delta sits: on the model's `embed_tokens` output, the word (or word-piece) embeddings. For
the word models that is where the word mask sits; for BERT/DeBERTa it is before the position and
type embeddings and the embedding LayerNorm, where TextDefender and FreeLB put it (the inputs_embeds
of Hugging Face models): their step sizes and norms are scaled to that space.

One ascent step (the l2 version of TextDefender's EmbeddingLevelGradientTrainer, per text):
  delta <- delta + step_size * g / ||g||,   then, with max_norm > 0, rescaled to ||delta|| <= max_norm
where g is the loss's gradient with respect to delta and norms run over the text's positions the
model reads (L x D: words for word models; every attended piece, [CLS] and [SEP] included, for
transformers, as TextDefender's attention-mask-shaped delta; padding never moves). The random start (init_magnitude > 0) is uniform in [-1, 1] per
coordinate scaled by init_magnitude / sqrt(real positions x D).

  pgd: the loss is the mode's objective at delta_K, after K ascent steps from the random start.
  freelb: the loss is the mean of the objective over delta_0 .. delta_{K-1}, the K points the ascent
    visits (Algorithm 1 of Zhu et al.): one backward pass per point gives the gradients of the
    parameters and of delta together, so K steps cost K forward-backward passes, not 2K.
K = 0 is the clean objective at delta = 0 (no random start), so both modes reduce to base (or to
adv with twins).

The defaults are TextDefender's (Li et al., EMNLP 2021; RockyLzy/TextDefender trainer/freelb.py and
trainer/gradient.py: --adv-steps 5, --adv-learning-rate 0.03, --adv-init-mag 0.05,
--adv-max-norm 0 = unbounded, l2). Their adv-steps is our K for both modes: K forward-backward
passes for FreeLB (the last ascent skipped, as theirs), K ascent steps and one more pass for PGD.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

MODES = ("pgd", "freelb")


@dataclasses.dataclass(frozen=True)
class EmbeddingAdversary:
  kind: str  # "pgd" or "freelb"
  steps: int = 5  # K
  step_size: float = 0.03
  init_magnitude: float = 0.05
  max_norm: float = 0.0  # 0 = unbounded

  def __post_init__(self):
    if self.kind not in MODES:
      raise ValueError(f"embedding adversary must be one of {MODES}, not {self.kind!r}")
    if self.steps < 0 or self.step_size < 0 or self.init_magnitude < 0 or self.max_norm < 0:
      raise ValueError(f"embedding adversary settings must be >= 0: {self}")

  @classmethod
  def from_config(cls, kind: str, c) -> "EmbeddingAdversary":
    return cls(kind, int(c.steps), float(c.step_size), float(c.init_magnitude), float(c.max_norm))


def text_norm(delta, real):
  """l2 norm of each text's perturbation over its real positions: delta (..., L, D), real (..., L)."""
  return jnp.sqrt(jnp.sum(jnp.square(delta) * real[..., None], axis=(-2, -1)))


def random_start(key, shape, real, magnitude: float):
  """delta_0: uniform in [-1, 1] on real positions, scaled by magnitude / sqrt(real positions x D)."""
  real = real.astype(jnp.float32)
  noise = jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0) * real[..., None]
  size = jnp.maximum(jnp.sum(real, -1) * shape[-1], 1.0)
  return noise * (magnitude / jnp.sqrt(size))[..., None, None]


def project(delta, real, max_norm: float):
  """Rescale each text's delta onto the ball ||delta|| <= max_norm (no-op for max_norm = 0)."""
  if not max_norm:
    return delta
  norm = text_norm(delta, real)
  scale = jnp.where(norm > max_norm, max_norm / jnp.maximum(norm, 1e-12), 1.0)
  return delta * scale[..., None, None]


def ascend(delta, grad, real, step_size: float, max_norm: float):
  """One normalised gradient-ascent step of each text's delta, then the projection."""
  real_f = real.astype(delta.dtype)[..., None]
  grad = grad * real_f
  norm = jnp.maximum(text_norm(grad, real), 1e-8)
  return project((delta + step_size * grad / norm[..., None, None]) * real_f, real, max_norm)
