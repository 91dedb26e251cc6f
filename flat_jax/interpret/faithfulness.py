"""Faithfulness of word attributions: do the words an explanation ranks first matter to the model?

Comprehensiveness (DeYoung et al. 2020, ERASER) at k: the drop in the predicted class's probability
when the k top-ranked words are deleted from the text. Its area over the perturbation curve (AOPC;
Samek et al. 2017) is the mean drop over k = 1..K. Sufficiency at k: the drop when only those k words
are kept (lower is better). Both beside the same figures for a random ranking of the same texts (a
seeded permutation per text), the baseline a faithful explanation must beat: consistency (Kendall's
tau between original and adversarial texts) says nothing about this, since an explanation can be
stable and still point at words the model ignores.

Words are the models' words (`clean_text`, split on spaces); deletion removes them from the text,
and k never reaches the whole text (at most its length - 1 words go).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from flat_jax.data.text import clean_text, tokenize

KS = tuple(range(1, 11))


def _ranked(attr_row: np.ndarray) -> np.ndarray:
  """Positions by attribution, highest first (ties: the earlier position)."""
  return np.argsort(-np.asarray(attr_row, np.float64), kind="stable")


def perturbation_curves(
  predict_proba: Callable,
  texts: Sequence[str],
  attributions: Sequence[np.ndarray],
  *,
  ks: Sequence[int] = KS,
  seed: int = 0,
) -> dict:
  """predict_proba(list[str]) -> (N, C); attributions[i] (C, n_words) for texts[i] (an attributor's
  output). Returns the mean comprehensiveness and sufficiency at each k, for the attribution's
  ranking (of the predicted class) and a random one, and their AOPCs (means over k)."""
  rng = np.random.RandomState(seed)
  words = [tokenize(clean_text(t))[: attr.shape[1]] for t, attr in zip(texts, attributions)]
  base = np.asarray(predict_proba([" ".join(w) for w in words]))
  predicted = base.argmax(-1)
  queries, owners = [], []  # (text index, ranking kind, measure, k)
  for i, (w, attr) in enumerate(zip(words, attributions)):
    if len(w) < 2:
      continue
    rankings = {
      "attribution": _ranked(np.asarray(attr)[predicted[i]][: len(w)]),
      "random": rng.permutation(len(w)),
    }
    for kind, order in rankings.items():
      for k in ks:
        top = set(order[: min(k, len(w) - 1)].tolist())
        queries.append(" ".join(x for j, x in enumerate(w) if j not in top))
        owners.append((i, kind, "comprehensiveness", k))
        queries.append(" ".join(x for j, x in enumerate(w) if j in top))
        owners.append((i, kind, "sufficiency", k))
  if not queries:
    return {"num_texts": 0}
  probs = np.asarray(predict_proba(queries))
  drops: dict = {}
  for (i, kind, measure, k), p in zip(owners, probs):
    drops.setdefault((kind, measure, k), []).append(float(base[i, predicted[i]] - p[predicted[i]]))
  out = {"num_texts": len({o[0] for o in owners}), "ks": list(ks)}
  for kind in ("attribution", "random"):
    for measure in ("comprehensiveness", "sufficiency"):
      curve = [float(np.mean(drops[(kind, measure, k)])) for k in ks]
      key = measure if kind == "attribution" else f"{measure}_random"
      out[key] = curve
      out[f"aopc_{key}"] = float(np.mean(curve))
  return out
