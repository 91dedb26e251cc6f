"""How synonym-like the synonym space's neighbours are above a cosine threshold: the harness that
calibrated SYNONYM_MIN_COS (flat_jax/attacks/resources/synonym_space.py) for the offline space.

  .venv/bin/python benchmarks/synonym_precision.py [--thresholds 0.6 0.7 0.8] [--vectors FILE]

For each threshold: the fraction of candidates (the 50 nearest words with cosine >= threshold)
that WordNet relates to the word, and the candidates per word, over PRECISION_WORDS (sentiment and
topic words of the paper's datasets). tests/attacks import `synonym_precision` from here.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from flat_jax.attacks.resources import synonym_candidates, wordnet_related

PRECISION_WORDS = (
  # sentiment (SST-2, IMDB)
  "good",
  "bad",
  "great",
  "terrible",
  "excellent",
  "awful",
  "funny",
  "boring",
  "clever",
  "stupid",
  "beautiful",
  "ugly",
  "happy",
  "sad",
  "interesting",
  "dull",
  "brilliant",
  "poor",
  "wonderful",
  "horrible",
  "enjoyable",
  "entertaining",
  "charming",
  "predictable",
  "love",
  "hate",
  "like",
  "enjoy",
  "fail",
  "waste",
  # topics (AG News, TREC)
  "movie",
  "film",
  "story",
  "actor",
  "performance",
  "music",
  "book",
  "game",
  "team",
  "company",
  "market",
  "price",
  "government",
  "war",
  "president",
  "city",
  "country",
  "car",
  "computer",
  "money",
  "win",
  "lose",
  "big",
  "small",
  "fast",
  "strong",
  "old",
  "new",
)


def synonym_precision(
  embedding, threshold: float, words: Sequence[str] = PRECISION_WORDS, max_candidates: int = 50
) -> dict:
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


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--thresholds", type=float, nargs="+", default=[0.6, 0.7, 0.75, 0.8, 0.85])
  parser.add_argument(
    "--vectors", default="", help="counter-fitted-vectors.txt; empty: the offline space"
  )
  args = parser.parse_args()
  from flat_jax.attacks.resources import load_synonym_embedding

  space = load_synonym_embedding(args.vectors or None)
  print(f"{space.source}: {len(space)} words")
  for threshold in args.thresholds:
    report = synonym_precision(space, threshold)
    print(
      f"cos >= {threshold:.2f}: precision {report['precision']:.3f}, "
      f"{report['candidates_per_word']:.1f} candidates per word, "
      f"{report['words_with_candidates']:.0%} of {report['words']} words with any"
    )


if __name__ == "__main__":
  main()
