"""Interpretation consistency of original/adversarial pairs (FLAT section "Interpretation
Consistency"): Kendall's tau between the two rankings of word attributions, and top-k intersection.

Words are compared by aligned position, so a word and its substitute count as the same word (the
paper "treat[s] synonyms as the same words"). For word-swap attacks the texts have equal length and
position i matches position i; `align_positions` pairs positions of texts of unequal length.

Importance is the *signed* attribution to the explained class, ranked high to low: a word that
pushes the prediction away from the class is unimportant for it, not important. This is what makes
the paper's per-class average meaningful: with probability attributions of a binary classifier the
class-0 attributions are exactly the negated class-1 ones, so ranking by absolute value would give
both classes the same ranking and nothing to average.
"""

from __future__ import annotations

import difflib
from typing import Iterable, Sequence

import numpy as np
from scipy import stats

DEFAULT_KS = tuple(range(1, 11))


def _vector(x, name: str) -> np.ndarray:
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != 1:
    raise ValueError(f"{name}: expected one attribution per word (1-D), got shape {x.shape}")
  return x


def _check_pair(attr_orig, attr_adv) -> tuple[np.ndarray, np.ndarray]:
  a, b = _vector(attr_orig, "attr_orig"), _vector(attr_adv, "attr_adv")
  if a.shape != b.shape:
    raise ValueError(
      f"attributions of {a.size} and {b.size} words: align the positions first (align_positions)"
    )
  if a.size == 0:
    raise ValueError("no words to compare")
  return a, b


def kendall_tau(attr_orig, attr_adv) -> float:
  """Kendall's tau-b between the rankings of positions by attribution (ties count as in tau-b).

  tau-b is undefined when a side has no ordered pair (one word, or all attributions equal). Then:
  1.0 when neither side orders anything (one word, or both constant: the rankings cannot
  disagree); 0.0 when exactly one side is constant (no association to measure)."""
  a, b = _check_pair(attr_orig, attr_adv)
  constant_a, constant_b = np.all(a == a[0]), np.all(b == b[0])
  if constant_a and constant_b:
    return 1.0
  if constant_a or constant_b:
    return 0.0
  return float(stats.kendalltau(a, b, variant="b").statistic)


def top_k_positions(attr, k: int) -> np.ndarray:
  """Positions of the k largest attributions; ties go to the earlier position (the same rule on
  both texts of a pair, whose positions are aligned)."""
  attr = _vector(attr, "attr")
  return np.argsort(-attr, kind="stable")[:k]


def topk_intersection(attr_orig, attr_adv, k: int) -> float:
  """|top-k positions of orig ∩ top-k of adv| / k, with k capped at the number of words (so a text
  of n <= k words scores 1)."""
  if k < 1:
    raise ValueError(f"k must be >= 1, got {k}")
  a, b = _check_pair(attr_orig, attr_adv)
  k = min(k, a.size)
  shared = np.intersect1d(top_k_positions(a, k), top_k_positions(b, k))
  return shared.size / k


def topk_chance(lengths, ks=tuple(range(1, 11))) -> dict[str, float]:
  """The top-k intersection two independent random rankings score on average over texts of these
  word counts: for n words and k' = min(k, n), E|top-k' ∩ top-k'| / k' = k' / n."""
  lengths = np.asarray([n for n in lengths if n > 0], np.float64)
  if lengths.size == 0:
    return {}
  return {str(k): float(np.mean(np.minimum(k, lengths) / lengths)) for k in ks}


def _by_class(attr, alignment_side) -> np.ndarray:
  attr = np.asarray(attr, dtype=np.float64)
  attr = attr[None] if attr.ndim == 1 else attr
  if attr.ndim != 2:
    raise ValueError(f"expected attributions (C, L) or (L,), got shape {attr.shape}")
  return attr if alignment_side is None else attr[:, alignment_side]


def pair_consistency(
  attr_by_class_orig,
  attr_by_class_adv,
  *,
  ks: Sequence[int] = DEFAULT_KS,
  alignment: Sequence[tuple[int, int]] | None = None,
) -> dict:
  """Both metrics for one pair, each computed per class ("on corresponding labels") and averaged
  over the classes. Attributions are (C, L) per class or (L,) for one class; `alignment` (pairs
  (orig position, adv position) from `align_positions`) selects and orders the compared words."""
  index = np.asarray(alignment, dtype=np.int64).reshape(-1, 2) if alignment is not None else None
  orig = _by_class(attr_by_class_orig, None if index is None else index[:, 0])
  adv = _by_class(attr_by_class_adv, None if index is None else index[:, 1])
  if orig.shape[0] != adv.shape[0]:
    raise ValueError(f"attributions for {orig.shape[0]} and {adv.shape[0]} classes")
  pairs = list(zip(orig, adv))
  return {
    "kendall_tau": float(np.mean([kendall_tau(a, b) for a, b in pairs])),
    "topk_intersection": {
      str(k): float(np.mean([topk_intersection(a, b, k) for a, b in pairs])) for k in ks
    },
  }


def summarize(pairs: Iterable, *, ks: Sequence[int] = DEFAULT_KS) -> dict:
  """Means over many pairs, in the results.json layout
  {"kendall_tau": float, "topk_intersection": {"1": float, ..., "10": float}}.

  Each item is a `pair_consistency` result or a tuple (attr_orig, attr_adv[, alignment])."""
  results = []
  for item in pairs:
    if isinstance(item, dict):
      results.append(item)
    else:
      orig, adv, *alignment = item
      results.append(
        pair_consistency(orig, adv, ks=ks, alignment=alignment[0] if alignment else None)
      )
  if not results:
    raise ValueError("no original/adversarial pairs to summarize")
  return {
    "kendall_tau": float(np.mean([r["kendall_tau"] for r in results])),
    "topk_intersection": {
      str(k): float(np.mean([r["topk_intersection"][str(k)] for r in results])) for k in ks
    },
  }


def align_positions(orig_tokens: Sequence[str], adv_tokens: Sequence[str]) -> list[tuple[int, int]]:
  """(orig position, adv position) for every word matched or substituted between two texts.

  Equal lengths (word-swap attacks): position i pairs with position i. Otherwise difflib's opcodes:
  equal runs pair up, a replaced run pairs position by position over the shorter of its two sides
  (e.g. a merge "can not" -> "cannot" pairs "can" with "cannot"), inserted and deleted words stay
  unpaired."""
  if len(orig_tokens) == len(adv_tokens):
    return [(i, i) for i in range(len(orig_tokens))]
  matcher = difflib.SequenceMatcher(None, list(orig_tokens), list(adv_tokens), autojunk=False)
  pairs = []
  for tag, i1, i2, j1, j2 in matcher.get_opcodes():
    if tag in ("equal", "replace"):
      pairs.extend(zip(range(i1, i2), range(j1, j2)))
  return pairs
