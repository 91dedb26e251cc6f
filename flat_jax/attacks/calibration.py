"""The temperature the evaluation attacks query a model at: softmax(logits / T) with T fitted on dev.

Why: score-based attacks (TextFooler, PWWS and most of TextAttack's recipes) rank words and choose
substitutes by how much the true class's probability drops. A model trained with cross-entropy on
its own softmax outputs (the authors' loss, train.loss_on_probs) drives its logits apart without
bound: SST-2 CNN margins of about 100 (base: 1.5), so 90% of dev sentences get a float32
probability of exactly 1.0, every candidate scores the same, and the search runs blind. After-attack
accuracy then rises although the classifier's decisions are no harder to flip. Temperature scaling
(Guo et al. 2017) changes no prediction and, for two classes, no ranking of the true-class
probability; it only undoes the saturation. T minimises the negative log-likelihood on dev, as a
defender calibrating a model would; a well-calibrated model gets T near 1.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from scipy import optimize
from scipy.special import log_softmax

# the fit is rounded so that a resumed evaluation finds its records (the attack records carry T)
# even where the last bits of the logits differ between machines
SIGNIFICANT_DIGITS = 4
LOG_T_BOUNDS = (np.log(1e-2), np.log(1e4))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
  """Mean negative log-likelihood of softmax(logits / temperature)."""
  logp = log_softmax(np.asarray(logits, np.float64) / temperature, axis=-1)
  return float(-np.mean(logp[np.arange(len(labels)), np.asarray(labels)]))


def fit_temperature(logits: np.ndarray, labels: Sequence[int]) -> float:
  """The temperature in [0.01, 10000] that minimises the dev NLL, to SIGNIFICANT_DIGITS digits."""
  logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
  if logits.ndim != 2 or len(logits) != len(labels) or not len(labels):
    raise ValueError(f"need (N, C) logits and N labels, got {logits.shape} and {labels.shape}")
  fit = optimize.minimize_scalar(
    lambda log_t: nll(logits, labels, np.exp(log_t)),
    bounds=LOG_T_BOUNDS,
    method="bounded",
    options={"xatol": 1e-6},
  )
  return float(f"{np.exp(fit.x):.{SIGNIFICANT_DIGITS}g}")


def calibrate(trained, texts: Sequence[str], labels: Sequence[int]) -> dict:
  """Fits the attack temperature of a trained model on (dev) texts read exactly as the attacks read
  them (the bridge's encoding and batch shape). Returns {"value", "nll_at_1", "nll", "saturated"}:
  saturated (saturated_at_t) is the fraction of texts whose float32 top probability at T = 1 (at
  the fitted T) is exactly 1, computed like the bridge computes it."""
  import jax
  from flat_jax.attacks.bridge import PredictionBridge

  logits32 = PredictionBridge.from_trained(trained, output="logits")(list(texts))
  logits, labels = logits32.astype(np.float64), np.asarray(labels)
  value = fit_temperature(logits, labels)
  if not np.exp(LOG_T_BOUNDS[0]) * 1.01 < value < np.exp(LOG_T_BOUNDS[1]) / 1.01:
    logging.warning(
      "attack temperature %g is at the bound of its search (dev NLL %.4f): the dev "
      "set is classified all right or all wrong with wide margins",
      value,
      nll(logits, labels, value),
    )

  def saturated(t):
    top = np.asarray(jax.nn.softmax(logits32 / np.float32(t), axis=-1)).max(axis=-1)
    return round(float(np.mean(top == np.float32(1.0))), 4)

  return {
    "value": value,
    "nll_at_1": round(nll(logits, labels, 1.0), 4),
    "nll": round(nll(logits, labels, value), 4),
    "saturated": saturated(1.0),
    "saturated_at_t": saturated(value),
  }
