"""Quality of an attack's adversarial examples (its successful attacks), as TextAttack reports it
and beyond: how many words changed, how close the adversarial sentence stays to the original (the
sentence encoder TextFooler's constraint uses: cosine of the two embeddings), how many substitutes
are WordNet synonyms of the word they replace (in any sense, adjective clusters included:
resources.wordnet_related), and how many keep the replaced word's part of speech in context
(spaCy's universal tags, on the texts as the models tokenise them). The offline substitutes are
noisier than the paper's (e.g. "action" -> "employment"): these figures say by how much.

Each figure is kept per example and summarised as a mean with its spread (10th, 25th, 50th, 75th,
90th percentiles) and a histogram over fixed bins, so runs and recipes compare by distribution.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from flat_jax.attacks.pairs import aligned_tokens

METRICS = ("words_changed", "perturbed_fraction", "similarity", "synonym_share", "pos_agreement")
QUANTILES = (10, 25, 50, 75, 90)
# every value falls in a bin: cosines can be negative, and a long text can change many words
BINS = {
  "words_changed": (1, 2, 3, 4, 5, 6, 8, 11, 10**9),
  "perturbed_fraction": tuple(np.round(np.linspace(0, 1, 11), 2)),
  "similarity": (-1.0,) + tuple(np.round(np.linspace(0, 1, 11), 2))[1:],
  "synonym_share": tuple(np.round(np.linspace(0, 1, 11), 2)),
  "pos_agreement": tuple(np.round(np.linspace(0, 1, 11), 2)),
}


def adversarial_examples(records: Sequence[dict]) -> list[dict]:
  """The successful attacks that replaced at least one word."""
  return [r for r in records if r["status"] == "successful" and r.get("replaced")]


def per_example(records: Sequence[dict], encoder=None, synonyms=None, tagger=None) -> list[dict]:
  """One dict of METRICS per adversarial example. encoder.encode(list[str]) -> (N, D),
  synonyms(word) -> set of words, tagger(list of word lists) -> list of tag lists; the offline
  defaults (resources) when None."""
  from flat_jax.attacks import resources

  examples = adversarial_examples(records)
  if not examples:
    return []
  encoder = encoder or resources.load_sentence_encoder()
  synonyms = synonyms or resources.wordnet_related
  tagger = tagger or (lambda lists: resources.spacy_tags_many(lists, tagset="universal"))
  originals = encoder.encode([r["original"] for r in examples])
  perturbed = encoder.encode([r["perturbed"] for r in examples])
  norms = np.linalg.norm(originals, axis=1) * np.linalg.norm(perturbed, axis=1)
  similarity = np.sum(originals * perturbed, axis=1) / np.maximum(norms, 1e-12)
  tokens = [aligned_tokens(r["original"], r["perturbed"]) for r in examples]
  tags = tagger([t for pair in tokens for t in pair])
  out = []
  for k, (record, (orig, pert)) in enumerate(zip(examples, tokens)):
    orig_tags, pert_tags = tags[2 * k], tags[2 * k + 1]
    pairs = record["replaced"]
    same_pos = [
      orig_tags[i] == pert_tags[j]
      for i, _, _ in pairs
      for j in [_partner(i, orig, pert)]
      if j is not None
    ]
    out.append(
      {
        "words_changed": len(pairs),
        "perturbed_fraction": record["perturbed_fraction"],
        "similarity": float(np.clip(similarity[k], -1.0, 1.0)),
        "synonym_share": float(
          np.mean([new.lower() in synonyms(old.lower()) for _, old, new in pairs])
        ),
        "pos_agreement": float(np.mean(same_pos)) if same_pos else None,
      }
    )
  return out


def _partner(i: int, orig: Sequence[str], pert: Sequence[str]) -> int | None:
  """The substitute's position: the same when the lengths agree (word swaps)."""
  return i if len(orig) == len(pert) and i < len(pert) else None


def summarize(examples: Sequence[dict]) -> dict:
  """Per metric: n, mean, percentiles and histogram counts over BINS (upper edge exclusive, the
  last bin closed)."""
  summary = {"num_examples": len(examples)}
  for metric in METRICS:
    values = np.asarray([e[metric] for e in examples if e.get(metric) is not None], np.float64)
    if not len(values):
      summary[metric] = {"n": 0}
      continue
    edges = BINS[metric]
    summary[metric] = {
      "n": int(len(values)),
      "mean": float(values.mean()),
      "percentiles": {str(q): float(np.percentile(values, q)) for q in QUANTILES},
      "histogram": {"edges": list(edges), "counts": np.histogram(values, bins=edges)[0].tolist()},
    }
  return summary
