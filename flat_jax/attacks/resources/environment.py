"""The offline environment of TextAttack and NLTK: the cache folder, the NLTK data (WordNet, which
the `wordnet` module installs, and English stopwords), nltk.download answered locally, and
textattack imported without the network and without overwriting the user's cache variables.

Call `prepare_textattack_environment()` before anything imports textattack. Also here: the error
every resource raises (`ResourceError`) and the atomic file writes the caches use.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import pathlib
import sys
import tempfile

from flat_jax.runtime import CACHE_ENV, default_cache_dir

# textattack's install module points these at TA_CACHE_DIR when that is set (textattack 0.3.11,
# shared/utils/install.py: set_cache_dir).
_TEXTATTACK_OVERWRITTEN_ENV = (
  "TFHUB_CACHE_DIR",
  "PYTORCH_TRANSFORMERS_CACHE",
  "HF_HOME",
  "XDG_CACHE_HOME",
)
# Libraries textattack imports that read those variables once, at their own import.
_CACHE_READING_MODULES = (
  "huggingface_hub.constants",
  "transformers.utils.hub",
  "datasets.config",
  "accelerate.commands.config.config_args",
)
_TEXTATTACK_MARKER = "post_install_check_3"


class ResourceError(RuntimeError):
  """A resource is missing or unusable; the message says what to install or pass."""


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
  # wordnet imports this module for its helpers: imported here, not at the top
  from flat_jax.attacks.resources import wordnet

  wordnet._install_wordnet(nltk_data)
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

  for category in (
    "corpora",
    "taggers",
    "tokenizers",
    "models",
    "chunkers",
    "misc",
    "stemmers",
    "sentiment",
    "grammars",
    "help",
  ):
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
  logging.info(
    "nltk.download(%r) skipped: flat_jax runs NLTK offline (resources/environment.py); "
    "English WordNet and stopwords are installed locally",
    info_or_id,
  )
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


def prepare_textattack_environment(
  cache_dir: str | os.PathLike | None = None, *, allow_nltk_downloads: bool = False
) -> pathlib.Path:
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
      logging.warning(
        "prepare_textattack_environment(%s) ignored: this process already uses %s",
        cache_dir,
        _prepared_cache_dir,
      )
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
    logging.warning(
      "textattack was imported before prepare_textattack_environment(): it may "
      "have tried NLTK downloads and overwritten HF_HOME/XDG_CACHE_HOME"
    )
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
