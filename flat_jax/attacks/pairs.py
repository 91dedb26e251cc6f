"""Replaced-word alignment between an original text and its adversarial version, by position."""

from __future__ import annotations

import difflib

from flat_jax.data.text import clean_text, tokenize


def aligned_tokens(original: str, perturbed: str) -> tuple[list[str], list[str]]:
  return tokenize(clean_text(original)), tokenize(clean_text(perturbed))


def replaced_pairs(original: str, perturbed: str) -> list[tuple[int, str, str]]:
  """(position in the original, original word, substitute) for every substituted word.

  Word-swap attacks keep the length, so positions correspond one to one. For attacks that insert
  or merge words (Clare), difflib aligns the two token lists and only equal-length replaced spans
  count as substitutions; insertions and deletions have no partner word."""
  orig, pert = aligned_tokens(original, perturbed)
  if len(orig) == len(pert):
    return [(i, a, b) for i, (a, b) in enumerate(zip(orig, pert)) if a != b]
  pairs = []
  for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=orig, b=pert, autojunk=False).get_opcodes():
    if tag == "replace" and i2 - i1 == j2 - j1:
      pairs.extend((i1 + k, orig[i1 + k], pert[j1 + k]) for k in range(i2 - i1))
  return pairs
