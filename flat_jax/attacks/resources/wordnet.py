"""WordNet 3.0 for the attacks: which copy NLTK reads (NLTK's own when installed, else Debian's
files copied into the NLTK data folder with the `lexnames` file Debian lacks), and the lookups the
recipes and the quality metrics use (`wordnet_synonyms`, `wordnet_related`).

`WORDNET_SOURCE` says which copy is in use once the NLTK data is installed; it is assigned then,
so read it from this module (`wordnet.WORDNET_SOURCE`), not from a copy imported earlier.
"""

from __future__ import annotations

import logging
import pathlib
import re

from flat_jax.attacks.resources import environment
from flat_jax.attacks.resources.environment import ResourceError, _atomic_write, _write_if_changed

DEBIAN_WORDNET = pathlib.Path("/usr/share/wordnet")
# WordNet 3.0's lexicographer files, numbered as in the `lexnames` file NLTK reads (lexnames(5WN)).
# Debian's packages do not ship that file. Third field: 1 noun, 2 verb, 3 adjective, 4 adverb.
WORDNET_LEXNAMES = (
  ("adj.all", 3),
  ("adj.pert", 3),
  ("adv.all", 4),
  ("noun.Tops", 1),
  ("noun.act", 1),
  ("noun.animal", 1),
  ("noun.artifact", 1),
  ("noun.attribute", 1),
  ("noun.body", 1),
  ("noun.cognition", 1),
  ("noun.communication", 1),
  ("noun.event", 1),
  ("noun.feeling", 1),
  ("noun.food", 1),
  ("noun.group", 1),
  ("noun.location", 1),
  ("noun.motive", 1),
  ("noun.object", 1),
  ("noun.person", 1),
  ("noun.phenomenon", 1),
  ("noun.plant", 1),
  ("noun.possession", 1),
  ("noun.process", 1),
  ("noun.quantity", 1),
  ("noun.relation", 1),
  ("noun.shape", 1),
  ("noun.state", 1),
  ("noun.substance", 1),
  ("noun.time", 1),
  ("verb.body", 2),
  ("verb.change", 2),
  ("verb.cognition", 2),
  ("verb.communication", 2),
  ("verb.competition", 2),
  ("verb.consumption", 2),
  ("verb.contact", 2),
  ("verb.creation", 2),
  ("verb.emotion", 2),
  ("verb.motion", 2),
  ("verb.perception", 2),
  ("verb.possession", 2),
  ("verb.social", 2),
  ("verb.stative", 2),
  ("verb.weather", 2),
  ("adj.ppl", 3),
)
_WORDNET_FILES = tuple(
  [f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")]
  + [f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")]
  + ["index.sense", "cntlist.rev"]
)

WORDNET_SOURCE = ""  # which WordNet the attacks use, once install_nltk_data has run


def _nltk_own_wordnet(exclude: set[pathlib.Path]) -> pathlib.Path | None:
  """NLTK's own WordNet (nltk.download('wordnet'): corpora/wordnet/ or corpora/wordnet.zip) in a
  folder of NLTK's search path, other than the folders flat_jax builds."""
  import nltk.data

  for folder in [pathlib.Path(p) for p in nltk.data.path]:
    if folder in exclude:
      continue
    for candidate in (folder / "corpora" / "wordnet", folder / "corpora" / "wordnet.zip"):
      if (candidate / "data.noun").is_file() or (
        candidate.suffix == ".zip" and candidate.is_file()
      ):
        return candidate
  return None


def _install_wordnet(nltk_data: pathlib.Path) -> None:
  """WordNet for NLTK: NLTK's own when it is installed (any OS, no root), else Debian's files
  copied into `nltk_data` (with the `lexnames` file NLTK needs and Debian lacks)."""
  global WORDNET_SOURCE
  own = _nltk_own_wordnet({nltk_data, *environment._installed_nltk_data})
  if own is not None:
    WORDNET_SOURCE = f"NLTK's WordNet at {own}"
    logging.info("WordNet: %s", WORDNET_SOURCE)
    return
  missing = [name for name in _WORDNET_FILES if not (DEBIAN_WORDNET / name).is_file()]
  if missing:
    raise ResourceError(
      f"WordNet 3.0 not found: neither NLTK's (run python -c \"import nltk; "
      f"nltk.download('wordnet')\" where the network allows) nor Debian's files in {DEBIAN_WORDNET} "
      f"(missing: {', '.join(missing)}; install Debian's packages wordnet-base and "
      "wordnet-sense-index, which setup.sh does when run as root)."
    )
  WORDNET_SOURCE = f"Debian's WordNet 3.0 files from {DEBIAN_WORDNET}"
  logging.info("WordNet: %s", WORDNET_SOURCE)
  target = nltk_data / "corpora" / "wordnet"
  target.mkdir(parents=True, exist_ok=True)
  for name in _WORDNET_FILES:
    source, copy = DEBIAN_WORDNET / name, target / name
    if not copy.is_file() or copy.stat().st_size != source.stat().st_size:
      _atomic_write(copy, source.read_bytes())
  lexnames = "".join(
    f"{i:02d}\t{name}\t{category}\n" for i, (name, category) in enumerate(WORDNET_LEXNAMES)
  )
  _write_if_changed(target / "lexnames", lexnames.encode())


# ------------------------------------------------------------------------------------------------
# Lookups.

_UNIVERSAL_TO_WORDNET = {"NOUN": "n", "VERB": "v", "ADJ": "a", "ADV": "r"}


def _wordnet():
  environment.install_nltk_data(environment._prepared_cache_dir)
  from nltk.corpus import wordnet

  return wordnet


def _single_word(lemma_name: str) -> str | None:
  word = lemma_name.lower()
  return word if re.fullmatch(r"[a-z]+(?:['-][a-z]+)*", word) else None


def wordnet_synonyms(word: str, pos: str | None = None) -> list[str]:
  """Single-word WordNet synonyms of `word` (lemmas of its synsets, most frequent sense first),
  lower-cased, without the word itself. `pos` is a WordNet letter (n, v, a, s, r) or a universal
  tag (NOUN, VERB, ADJ, ADV). The documented offline substitute for HowNet sememe candidates."""
  wordnet = _wordnet()
  if pos is not None:
    pos = _UNIVERSAL_TO_WORDNET.get(pos, pos)
  word = word.lower()
  synonyms: dict[str, None] = {}
  for synset in wordnet.synsets(word, pos=pos):
    for lemma in synset.lemma_names():
      candidate = _single_word(lemma)
      if candidate and candidate != word:
        synonyms[candidate] = None
  return list(synonyms)


def _lemma_words(synsets) -> set[str]:
  return {
    word for synset in synsets for lemma in synset.lemma_names() if (word := _single_word(lemma))
  }


def wordnet_related(word: str) -> set[str]:
  """Words WordNet counts as synonyms of `word` in any sense: lemmas sharing a synset, plus, for
  adjectives, the lemmas of `similar_to` clusters (good -> nice, superb, neat ...)."""
  wordnet = _wordnet()
  related = set()
  for synset in wordnet.synsets(word.lower()):
    related |= _lemma_words([synset] + synset.similar_tos())
  related.discard(word.lower())
  return related
