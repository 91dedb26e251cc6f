"""Text cleaning and tokenisation for the word-level models (the paper's appendix: lower-case,
special characters and extra whitespace removed, IMDB's <br /> tags dropped)."""

from __future__ import annotations

import re

_BR_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_HTML_ENTITY = re.compile(r"&(#\d+|[a-z]+);|\s#\d+;", re.IGNORECASE)
_SPECIAL = re.compile(r"[^a-z0-9(),!?'`]")
# a lookbehind, so that adjacent endings ("didn't's") all split in one pass: cleaning a clean
# text changes nothing (the splits are cleaned once, the attacks and IG clean their texts again)
_CONTRACTION = re.compile(r"(?<=\w)('s|'ve|n't|'re|'d|'ll|'m)\b")
_PUNCT = re.compile(r"([(),!?])")
_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
  """Lower-cases, drops HTML line breaks and entities, keeps letters, digits and ( ) , ! ? ' `,
  splits English contractions and punctuation into their own tokens, and collapses whitespace."""
  text = _BR_TAG.sub(" ", text)
  text = _HTML_ENTITY.sub(" ", text)
  text = text.lower()
  text = _SPECIAL.sub(" ", text)
  text = _CONTRACTION.sub(r" \1", text)
  text = _PUNCT.sub(r" \1 ", text)
  return _SPACES.sub(" ", text).strip()


def tokenize(text: str) -> list[str]:
  """Splits an already cleaned text on whitespace."""
  return text.split()
