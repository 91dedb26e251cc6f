"""Global word importance of a FLAT run (the paper's appendix D: Figure 4, Table 9, Figure 5).

phi(w) is the keep-probability the word mask gives word w from its embedding alone (DIR/importance.npy).
Two analyses:

- Correlations (Figure 4, Table 9): Pearson correlations between word frequency in the clean
  training set, substitution frequency (how often the attacks of the adversarial rounds replaced the
  word) and phi, for the three pairs the paper plots: (a) substitution vs word frequency, (b) phi vs
  word frequency, (c) phi vs substitution frequency. The words are the vocabulary words that occur
  in the clean training texts (the only words an attack on the training set can replace; substitutes
  the rounds added to the vocabulary have no training frequency), words never replaced included with
  substitution frequency 0. The paper says only "Pearson correlations", so `pearson` is on the raw
  counts; raw counts are dominated by a few function words ("the", "?"), so `pearson_log` gives the
  same correlations on log(1 + count), which is also how Figure 4's axes are drawn here.
- Synonym consistency (Figure 5): for `num_words` (1000) vocabulary words sampled with a seed, the L1
  norm of the differences between phi(word) and phi of its `num_synonyms` (10) nearest synonyms,
  sum_j |phi(w) - phi(s_j)|; the same against as many random vocabulary words as a reference.
  Synonyms are nearest neighbours (cosine) in the attack's synonym space (counter-fitted vectors,
  `flat_jax.attacks.resources.load_synonym_embedding`), among the vocabulary words it holds. Not the
  run's own embedding table: phi is a smooth function of exactly that embedding, so its neighbours
  would have close phi by construction whatever training did; plain GloVe neighbours are often
  antonyms (good/bad); and it is the attack's synonyms that FLAT's L_imp ties together.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import pathlib
from typing import Iterable, Sequence

import numpy as np
from scipy import stats

from flat_jax.data.text import clean_text, tokenize
from flat_jax.data.vocab import PAD, UNK

NUM_SPECIAL = 2  # <pad> and <unk>: no phi in importance.npy


@dataclasses.dataclass
class ImportanceAnalysis:
  """Arrays for the plots (one row per analysed word) and the JSON-ready `summary`."""

  words: list[str]  # training words, the rows of the three arrays below
  phi: np.ndarray
  word_freq: np.ndarray
  sub_freq: np.ndarray
  synonym_l1: np.ndarray  # one per sampled word (Figure 5)
  random_l1: np.ndarray
  summary: dict


def phi_by_id(phi, vocab_size: int) -> np.ndarray:
  """phi indexed by vocabulary id (NaN for <pad> and <unk>). Takes one value per id, or one per id
  from 2 on (what the pipeline saves in importance.npy)."""
  phi = np.asarray(phi, dtype=np.float64)
  if phi.ndim != 1:
    raise ValueError(f"phi: expected one value per word (1-D), got shape {phi.shape}")
  if phi.size == vocab_size:
    phi = phi.copy()
    phi[:NUM_SPECIAL] = np.nan
    return phi
  if phi.size == vocab_size - NUM_SPECIAL:
    return np.concatenate([np.full(NUM_SPECIAL, np.nan), phi])
  raise ValueError(
    f"phi has {phi.size} values for a vocabulary of {vocab_size} words: expected "
    f"{vocab_size} (every id) or {vocab_size - NUM_SPECIAL} (ids from 2 on)"
  )


def word_frequency(texts: Iterable[str], vocab_words: Sequence[str]) -> np.ndarray:
  """Occurrences of each vocabulary word in the (cleaned, tokenized) texts."""
  counts = collections.Counter(tok for text in texts for tok in tokenize(clean_text(text)))
  return np.array([counts.get(w, 0) for w in vocab_words], dtype=np.int64)


def substitution_frequency(records: Iterable[dict], vocab_words: Sequence[str]) -> np.ndarray:
  """How often each vocabulary word was the original word of a replacement in the records'
  `replaced` lists ([position, original, substitute])."""
  counts = collections.Counter()
  for line, record in enumerate(records, start=1):
    try:
      counts.update(original for _, original, _ in record["replaced"])
    except (KeyError, TypeError, ValueError):
      raise ValueError(
        f"adversarial record {line}: expected 'replaced': [[position, original, "
        f"substitute], ...], got {record.get('replaced')!r}"
      ) from None
  return np.array([counts.get(w, 0) for w in vocab_words], dtype=np.int64)


def _pearson(x, y) -> float | None:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
    return None  # undefined: a constant side
  return float(stats.pearsonr(x, y).statistic)


def correlations(phi, word_freq, sub_freq) -> dict:
  """The three Pearson correlations of Table 9 on raw counts (`pearson`) and on log(1 + count)
  (`pearson_log`); None where a side is constant."""
  phi, word_freq, sub_freq = (np.asarray(a, np.float64) for a in (phi, word_freq, sub_freq))
  if not phi.shape == word_freq.shape == sub_freq.shape or phi.ndim != 1:
    raise ValueError(
      f"phi, word_freq and sub_freq must be 1-D of one length, got {phi.shape}, "
      f"{word_freq.shape}, {sub_freq.shape}"
    )

  def table(wf, sf):
    return {
      "sub_freq_vs_word_freq": _pearson(sf, wf),
      "phi_vs_word_freq": _pearson(phi, wf),
      "phi_vs_sub_freq": _pearson(phi, sf),
    }

  return {
    "pearson": table(word_freq, sub_freq),
    "pearson_log": table(np.log1p(word_freq), np.log1p(sub_freq)),
  }


def _unit_rows(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def synonym_l1(
  phi,
  vocab_words: Sequence[str],
  space_words: Sequence[str],
  space_vectors,
  *,
  num_words: int = 1000,
  num_synonyms: int = 10,
  seed: int = 0,
) -> dict:
  """Figure 5: sum_j |phi(w) - phi(s_j)| over the `num_synonyms` nearest neighbours s_j (cosine in
  the synonym space) of `num_words` seeded random vocabulary words, the neighbours searched among the
  vocabulary words the space holds; and the same against random vocabulary words.

  `phi` is indexed by vocabulary id (`phi_by_id`); <pad>, <unk> and words without phi are skipped.
  Returns {"words", "synonyms" (per word, its neighbours), "cosines" (theirs, per word), "synonym_l1",
  "random_l1"}. Within a run's vocabulary the 10 nearest neighbours are not all synonyms the attack
  would use: the cosines say how close they are."""
  phi = np.asarray(phi, np.float64)
  if phi.shape != (len(vocab_words),):
    raise ValueError(f"phi has shape {phi.shape}, expected ({len(vocab_words)},): one per word")
  space_vectors = np.asarray(space_vectors, np.float32)
  if space_vectors.ndim != 2 or space_vectors.shape[0] != len(space_words):
    raise ValueError(
      f"synonym space: {len(space_words)} words but vectors of shape {space_vectors.shape}"
    )
  if num_words < 1 or num_synonyms < 1:
    raise ValueError(f"num_words and num_synonyms must be >= 1, got {num_words}, {num_synonyms}")
  row_of = {w: i for i, w in enumerate(space_words)}
  ids = np.array(
    [
      i
      for i, w in enumerate(vocab_words)
      if w in row_of and w not in (PAD, UNK) and np.isfinite(phi[i])
    ],
    dtype=np.int64,
  )
  if ids.size <= num_synonyms:
    raise ValueError(
      f"only {ids.size} vocabulary words are in the synonym space: need more than "
      f"num_synonyms={num_synonyms}"
    )
  vectors = _unit_rows(space_vectors[[row_of[vocab_words[i]] for i in ids]])
  rng = np.random.default_rng(seed)
  sampled = np.sort(rng.choice(ids.size, size=min(num_words, ids.size), replace=False))
  sims = vectors[sampled] @ vectors.T
  sims[np.arange(sampled.size), sampled] = -np.inf  # not its own synonym
  nearest = np.argsort(-sims, axis=1, kind="stable")[:, :num_synonyms]
  others = np.stack(
    [
      rng.choice(np.delete(np.arange(ids.size), s), size=num_synonyms, replace=False)
      for s in sampled
    ]
  )
  phi_ids = phi[ids]
  l1 = lambda neighbours: np.abs(phi_ids[sampled][:, None] - phi_ids[neighbours]).sum(axis=1)
  return {
    "words": [vocab_words[i] for i in ids[sampled]],
    "synonyms": [[vocab_words[i] for i in ids[row]] for row in nearest],
    "cosines": np.take_along_axis(sims, nearest, axis=1),
    "synonym_l1": l1(nearest),
    "random_l1": l1(others),
  }


def _describe(values: np.ndarray) -> dict:
  q1, median, q3 = np.percentile(values, [25, 50, 75])
  return {
    "mean": float(values.mean()),
    "std": float(values.std()),
    "median": float(median),
    "q1": float(q1),
    "q3": float(q3),
  }


def _neighbour_cosines(cosines: np.ndarray) -> dict:
  return {
    "mean": float(cosines.mean()),
    "median_nearest": float(np.median(cosines[:, 0])),
    "median_farthest": float(np.median(cosines[:, -1])),
  }


def analyze(
  phi,
  vocab_words: Sequence[str],
  train_texts: Iterable[str],
  adversarial_records: Iterable[dict],
  *,
  synonym_space: tuple | None = None,
  num_words: int = 1000,
  num_synonyms: int = 10,
  seed: int = 0,
) -> ImportanceAnalysis:
  """Table 9's correlations and Figure 5's synonym L1 of a run's global importance `phi` (one per
  vocabulary id, or per id from 2 on as in importance.npy). `adversarial_records` are the records
  the rounds trained on; `synonym_space` is (words, vectors), or None to skip Figure 5."""
  vocab_words = list(vocab_words)
  phi = phi_by_id(phi, len(vocab_words))
  word_freq = word_frequency(train_texts, vocab_words)
  records = list(adversarial_records)
  sub_freq = substitution_frequency(records, vocab_words)
  rows = np.flatnonzero((word_freq > 0) & np.isfinite(phi))
  if rows.size < 2:
    raise ValueError(f"only {rows.size} vocabulary words occur in the training texts")
  replaced = sum(len(r["replaced"]) for r in records)
  summary = {
    "num_words": int(rows.size),
    "num_records": len(records),
    "num_replacements": int(replaced),
    # replacements of words outside the analysed ones (e.g. outside the vocabulary)
    "replacements_not_counted": int(replaced - sub_freq[rows].sum()),
    "words_replaced": int((sub_freq[rows] > 0).sum()),
    **correlations(phi[rows], word_freq[rows], sub_freq[rows]),
  }
  synonym_l1_, random_l1 = np.zeros(0), np.zeros(0)
  if synonym_space is not None:
    figure5 = synonym_l1(
      phi, vocab_words, *synonym_space, num_words=num_words, num_synonyms=num_synonyms, seed=seed
    )
    synonym_l1_, random_l1 = figure5["synonym_l1"], figure5["random_l1"]
    summary["synonym_l1"] = {
      "num_words": int(synonym_l1_.size),
      "num_synonyms": num_synonyms,
      "seed": seed,
      "synonyms": _describe(synonym_l1_),
      "neighbour_cosine": _neighbour_cosines(figure5["cosines"]),
      "random_words": _describe(random_l1),
      "examples": dict(list(zip(figure5["words"], figure5["synonyms"]))[:5]),
    }
  return ImportanceAnalysis(
    [vocab_words[i] for i in rows],
    phi[rows],
    word_freq[rows],
    sub_freq[rows],
    synonym_l1_,
    random_l1,
    summary,
  )


def adversarial_records(workdir, keep: str | None = None) -> list[dict]:
  """The records of DIR/adversarial/round_<k>.jsonl that the rounds trained on (`keep` as the run's
  attack.keep: 'successful' or 'perturbed'; default: the run's own setting)."""
  from flat_jax.attacks.augment import kept_records
  from flat_jax.attacks.generate import records_by_index

  workdir = pathlib.Path(workdir)
  if keep is None:
    keep = json.loads((workdir / "config.json").read_text())["attack"]["keep"]
  files = sorted(
    (workdir / "adversarial").glob("round_*.jsonl"), key=lambda p: int(p.stem.split("_")[1])
  )
  return [r for f in files for r in kept_records(records_by_index(f), keep)]


def offline_synonym_space(path: str | None = None) -> tuple[list[str], np.ndarray]:
  """(words, vectors) of the attacks' synonym space (imports textattack: seconds)."""
  from flat_jax.attacks.resources import load_synonym_embedding

  embedding = load_synonym_embedding(path or None)
  return list(embedding._index2word), np.asarray(embedding.embedding_matrix)


def training_texts(workdir) -> list[str]:
  """The clean training texts of a run, split as the run split them."""
  import ml_collections
  from flat_jax.data.datasets import load_dataset

  config = json.loads((pathlib.Path(workdir) / "config.json").read_text())
  dataset = load_dataset(
    ml_collections.ConfigDict(config["data"]), seed=config["seed"], allow_download=False
  )
  return list(dataset.train.texts)


def analyze_run(
  workdir,
  *,
  train_texts: Sequence[str] | None = None,
  synonym_space: tuple | None = None,
  num_words: int = 1000,
  num_synonyms: int = 10,
  seed: int = 0,
) -> ImportanceAnalysis:
  """`analyze` on a finished FLAT workdir: importance.npy, vocab.json, the rounds' adversarial sets
  and the run's training texts; the synonym space defaults to the attack's
  (config attack.synonym_vectors, else the offline one)."""
  from flat_jax.data.vocab import Vocab

  workdir = pathlib.Path(workdir)
  if not (workdir / "importance.npy").exists():
    raise FileNotFoundError(
      f"{workdir}: no importance.npy (only FLAT runs learn a global importance)"
    )
  if synonym_space is None:
    config = json.loads((workdir / "config.json").read_text())
    synonym_space = offline_synonym_space(config["attack"].get("synonym_vectors") or None)
  phi = np.load(workdir / "importance.npy")
  # the model's own vocabulary: an earlier round's model (continuous schedule) predates the words
  # later rounds added to vocab.json
  return analyze(
    phi,
    Vocab.load(workdir / "vocab.json").prefix(len(phi) + 2).words,
    training_texts(workdir) if train_texts is None else train_texts,
    adversarial_records(workdir),
    synonym_space=synonym_space,
    num_words=num_words,
    num_synonyms=num_synonyms,
    seed=seed,
  )
