"""Offline attack resources: textattack importing without the network, WordNet, the synonym
space, the sentence encoder, the spaCy part-of-speech constraint and masked language models.

The synonym space is built once into the default cache ($FLAT_JAX_CACHE or ~/.cache/flat_jax;
under a minute on 2 cores) and loaded from there in about a second afterwards.
"""

import json
import os
import pickle
import subprocess
import sys
import time

import numpy as np
import pytest

from flat_jax.attacks import resources
from flat_jax.attacks.resources import synonym_space, wordnet


@pytest.fixture(scope="session")
def cache_dir():
  return resources.prepare_textattack_environment()


@pytest.fixture(scope="session")
def synonyms(cache_dir):
  return resources.load_synonym_embedding()


def _candidates(embedding, word):
  """What TextFooler keeps: the 50 nearest words, then min_cos_sim."""
  from textattack.transformations import WordSwapEmbedding

  swap = WordSwapEmbedding(max_candidates=50, embedding=embedding)
  return [
    c
    for c in swap._get_replacement_words(word)
    if embedding.get_cos_sim(word, c) >= embedding.min_cos_sim
  ]


_OFFLINE_IMPORT = r"""
import json, os, socket, sys
attempts = []
def refuse(*args, **kwargs):
  attempts.append(repr(args[1:])[:200])
  raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse

from flat_jax.attacks import resources
cache = resources.prepare_textattack_environment(sys.argv[1])
import huggingface_hub.constants
import textattack
from textattack.constraints.pre_transformation import StopwordModification
from textattack.transformations import WordSwapWordNet
from nltk.corpus import wordnet
swap = WordSwapWordNet()
stopwords = StopwordModification().stopwords
print(json.dumps({
    "attempts": attempts,
    "cache": str(cache),
    "hf_home_env": os.environ.get("HF_HOME"),
    "hf_home_hub": str(huggingface_hub.constants.HF_HOME),
    "xdg": os.environ.get("XDG_CACHE_HOME"),
    "good_synsets": len(wordnet.synsets("good")),
    "lexnames": [wordnet.synset(s).lexname() for s in ("dog.n.01", "run.v.01", "good.a.01")],
    "movie": sorted(swap._get_replacement_words("movie")),
    "stopwords": len(stopwords),
    "the_is_stopword": "the" in stopwords,
}))
"""


def test_textattack_imports_offline_without_download_attempts(tmp_path):
  env = {
    k: v
    for k, v in os.environ.items()
    if k not in ("FLAT_JAX_CACHE", "TA_CACHE_DIR", "NLTK_DATA", "XDG_CACHE_HOME")
  }
  env["HF_HOME"] = str(tmp_path / "users_hf_home")
  done = subprocess.run(
    [sys.executable, "-c", _OFFLINE_IMPORT, str(tmp_path / "cache")],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  report = json.loads(done.stdout.strip().splitlines()[-1])
  assert report["attempts"] == []
  assert "[nltk_data]" not in done.stderr and "Error loading" not in done.stderr
  assert report["hf_home_env"] == env["HF_HOME"] == report["hf_home_hub"]
  assert report["xdg"] is None
  assert report["good_synsets"] > 20
  assert report["lexnames"] == ["noun.animal", "verb.motion", "adj.all"]
  assert {"film", "flick", "pic", "picture"} <= set(report["movie"])
  assert report["stopwords"] > 300 and report["the_is_stopword"]
  cache = tmp_path / "cache"
  assert (cache / "textattack" / "post_install_check_3").is_file()
  lexnames = (cache / "nltk_data" / "corpora" / "wordnet" / "lexnames").read_text().splitlines()
  assert len(lexnames) == 45
  assert lexnames[0] == "00\tadj.all\t3" and lexnames[44] == "44\tadj.ppl\t3"
  assert lexnames[3] == "03\tnoun.Tops\t1" and lexnames[29] == "29\tverb.body\t2"


def test_prepare_is_idempotent(cache_dir):
  started = time.time()
  assert resources.prepare_textattack_environment() == cache_dir
  assert resources.prepare_textattack_environment(cache_dir) == cache_dir
  assert time.time() - started < 0.5
  assert os.environ["NLTK_DATA"].split(os.pathsep)[0] == str(cache_dir / "nltk_data")


def test_missing_wordnet_says_what_to_install(tmp_path, monkeypatch):
  monkeypatch.setattr(wordnet, "DEBIAN_WORDNET", tmp_path / "no_wordnet")
  with pytest.raises(resources.ResourceError, match="wordnet-base and wordnet-sense-index"):
    resources.install_nltk_data(tmp_path / "cache")


def test_nltk_own_wordnet_is_used_without_debian_files(tmp_path, monkeypatch, cache_dir):
  """macOS, conda, clusters: no /usr/share/wordnet, but nltk.download('wordnet') left NLTK's own."""
  import shutil
  import nltk.data

  own = tmp_path / "user_nltk_data"
  shutil.copytree(cache_dir / "nltk_data" / "corpora" / "wordnet", own / "corpora" / "wordnet")
  monkeypatch.setattr(wordnet, "DEBIAN_WORDNET", tmp_path / "no_wordnet")
  monkeypatch.setattr(nltk.data, "path", [str(own)] + list(nltk.data.path))
  monkeypatch.setenv("NLTK_DATA", os.environ.get("NLTK_DATA", ""))  # restored for later workers
  resources.install_nltk_data(tmp_path / "cache")
  assert wordnet.WORDNET_SOURCE == f"NLTK's WordNet at {own / 'corpora' / 'wordnet'}"
  assert not (tmp_path / "cache" / "nltk_data" / "corpora" / "wordnet").exists()  # nothing copied


def test_wordnet_synonyms(cache_dir):
  movie = resources.wordnet_synonyms("Movie")
  assert "film" in movie and "movie" not in movie
  assert all(w == w.lower() and " " not in w and "_" not in w for w in movie)
  adjectives = resources.wordnet_synonyms("good", pos="ADJ")
  assert "estimable" in adjectives and "goodness" not in adjectives
  assert resources.wordnet_synonyms("good", pos="a") == adjectives
  assert resources.wordnet_synonyms("qwxzv") == []


def test_synonym_space_is_a_textattack_embedding_with_nn_matrix(synonyms):
  from textattack.shared import WordEmbedding

  assert isinstance(synonyms, WordEmbedding)
  assert synonyms.min_cos_sim == resources.SYNONYM_MIN_COS
  assert 60_000 <= len(synonyms) <= 70_000
  rows = np.arange(len(synonyms))
  assert np.array_equal(synonyms.nn_matrix[:, 0], rows)
  assert synonyms.nn_matrix.shape[1] == 51
  norms = np.linalg.norm(synonyms.embedding_matrix, axis=1)
  np.testing.assert_allclose(norms, 1.0, atol=1e-4)
  assert synonyms.max_mse_dist == pytest.approx(resources.SYNONYM_MAX_MSE)
  copy = pickle.loads(pickle.dumps(synonyms))  # transformations travel to worker processes
  assert copy.nearest_neighbours(copy.word2index("movie"), 5) is not None
  assert copy.min_cos_sim == synonyms.min_cos_sim


def test_synonym_candidates_are_synonyms(synonyms):
  good = _candidates(synonyms, "good")
  assert {"fine", "nice", "decent"} & set(good), good
  assert not {"bad", "better", "worse", "best"} & set(good), good
  assert "film" in _candidates(synonyms, "movie")
  clever = _candidates(synonyms, "clever")
  assert {"ingenious", "smart", "intelligent"} & set(clever), clever
  assert "stupid" not in clever
  assert synonyms.get_cos_sim("good", "bad") < 0.2
  assert synonyms.get_cos_sim("clever", "stupid") < 0.2


def test_synonym_precision_at_the_calibrated_threshold(synonyms, synonym_precision):
  report = synonym_precision(synonyms, resources.SYNONYM_MIN_COS)
  print(
    f"\nsynonym precision at cos >= {report['threshold']}: {report['precision']:.3f}, "
    f"{report['candidates_per_word']:.1f} candidates per word over {report['words']} words"
  )
  assert report["words"] >= 50
  assert report["precision"] >= 0.7
  assert 3 <= report["candidates_per_word"] <= 20
  looser = synonym_precision(synonyms, resources.SYNONYM_MIN_COS - 0.1)
  assert looser["precision"] < report["precision"]
  assert looser["candidates_per_word"] > report["candidates_per_word"]


def test_synonym_space_loads_from_the_disk_cache(synonyms):
  assert resources.load_synonym_embedding() is synonyms
  synonym_space._loaded_embeddings.clear()
  started = time.time()
  reloaded = resources.load_synonym_embedding()
  assert time.time() - started < 5.0
  np.testing.assert_array_equal(reloaded.embedding_matrix, synonyms.embedding_matrix)
  np.testing.assert_array_equal(reloaded.nn_matrix, synonyms.nn_matrix)


def test_counter_fitted_vectors_file(tmp_path, cache_dir):
  vectors = {
    "good": [1, 0, 0, 0],
    "fine": [0.9, 0.1, 0, 0],
    "nice": [0.8, 0.2, 0.1, 0],
    "bad": [-1, 0, 0, 0],
    "movie": [0, 0, 1, 0],
    "film": [0, 0, 0.95, 0.1],
  }
  path = tmp_path / "counter-fitted-vectors.txt"
  path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()))
  embedding = resources.load_synonym_embedding(str(path), cache_dir=tmp_path)
  assert embedding.min_cos_sim == resources.COUNTER_FITTED_MIN_COS
  assert np.array_equal(embedding.nn_matrix[:, 0], np.arange(6))
  assert (
    embedding.index2word(embedding.nearest_neighbours(embedding.word2index("good"), 1)[0]) == "fine"
  )
  assert (
    embedding.index2word(embedding.nearest_neighbours(embedding.word2index("movie"), 1)[0])
    == "film"
  )
  assert list((tmp_path / "synonym_space").glob("file-*.npz"))
  broken = tmp_path / "broken.txt"
  broken.write_text("good 1 0 0\nbad 1 0\n")
  with pytest.raises(resources.ResourceError, match="broken.txt:2"):
    resources.load_synonym_embedding(str(broken), cache_dir=tmp_path)
  with pytest.raises(resources.ResourceError, match="no such file"):
    resources.load_synonym_embedding(str(tmp_path / "missing.txt"), cache_dir=tmp_path)


def _swaps(text, index, *words):
  from textattack.shared import AttackedText

  original = AttackedText(text)
  return original, [original.replace_word_at_index(index, w) for w in words]


def test_sentence_encoder_prefers_paraphrases_and_pickles(cache_dir):
  from flat_jax.attacks.resources.textattack_components import OfflineSentenceEncoder

  encoder = OfflineSentenceEncoder(
    threshold=0.8, metric="angular", window_size=15, skip_text_shorter_than_window=False
  )
  embeddings = encoder.encode(
    [
      "the film was a delight from start to finish",
      "the movie was a joy from beginning to end",
      "interest rates rose sharply in the third quarter",
    ]
  )
  assert embeddings.shape == (3, resources.USE_PORT_DIM) and embeddings.dtype == np.float32
  cos = embeddings @ embeddings.T / np.outer(*(2 * [np.linalg.norm(embeddings, axis=1)]))
  assert cos[0, 1] > cos[0, 2] + 0.2
  original, (synonym, unrelated) = _swaps(
    "the acting is clever and the plot is gripping", 3, "ingenious", "banana"
  )
  scores = encoder._score_list(original, [synonym, unrelated])
  assert scores[0] > scores[1]
  copy = pickle.loads(pickle.dumps(encoder))
  assert copy._model is None and copy.window_size == 15
  np.testing.assert_allclose(
    copy.encode(["a short test"]), encoder.encode(["a short test"]), atol=1e-5
  )


def test_sentence_encoder_real_use_needs_tensorflow(tmp_path, cache_dir):
  from flat_jax.attacks.resources.textattack_components import OfflineSentenceEncoder

  encoder = OfflineSentenceEncoder(model_path=str(tmp_path))
  with pytest.raises(resources.ResourceError, match="tensorflow"):
    encoder.encode(["a sentence"])
  with pytest.raises(resources.ResourceError, match="large"):
    OfflineSentenceEncoder(large=True)


def test_spacy_part_of_speech(cache_dir):
  from flat_jax.attacks.resources.textattack_components import SpacyPartOfSpeech

  assert resources.spacy_tags(["the", "movie", "is", "good"]) == ["DET", "NOUN", "VERB", "ADJ"]
  constraint = SpacyPartOfSpeech()
  original, (fine, quickly) = _swaps(
    "the acting is good and the story is fun", 3, "fine", "quickly"
  )
  assert constraint._check_constraint(fine, original)
  assert not constraint._check_constraint(quickly, original)
  # the swapped word's own position is tagged, not an earlier copy of the same word
  assert constraint._get_pos(["run", "is", "a"], "run", ["by", "the", "river"]) == "NOUN"
  copy = pickle.loads(pickle.dumps(constraint))
  assert copy._check_constraint(fine, original) and not copy._check_constraint(quickly, original)


def test_masked_lm(tmp_path, cache_dir, tiny_mlm):
  with pytest.raises(resources.ResourceError, match="none exists offline"):
    resources.load_masked_lm("")
  with pytest.raises(resources.ResourceError, match="config.json"):
    resources.load_masked_lm(tmp_path)
  model, tokenizer = resources.load_masked_lm(tiny_mlm)
  assert not model.training
  encoded = tokenizer("the movie is [MASK] .", return_tensors="pt")
  assert tokenizer.unk_token_id not in encoded["input_ids"][0].tolist()
  assert model(**encoded).logits.shape == (1, encoded["input_ids"].shape[1], len(tokenizer))
  from textattack.shared import AttackedText
  from textattack.transformations import WordSwapMaskedLM

  swap = WordSwapMaskedLM(
    method="bae",
    masked_language_model=model,
    tokenizer=tokenizer,
    max_candidates=5,
    min_confidence=0.0,
  )
  candidates = swap._bae_replacement_words(AttackedText("the movie is good"), [3])
  assert len(candidates) == 1 and len(candidates[0]) <= 5


def test_fast_paths_match_textattack(cache_dir, synonyms):
  """The shortcuts taken for speed give TextAttack's own results: batched spaCy tags, the batched
  part-of-speech check, the sentence encoder's skip of texts shorter than its window, the
  memoised word splitter and the module-free cosine."""
  import torch
  from textattack.constraints.grammaticality import PartOfSpeech
  from textattack.constraints.semantics.sentence_encoders import SentenceEncoder
  from textattack.shared import WordEmbedding, attacked_text
  from textattack.shared.utils import strings

  from flat_jax.attacks.resources.textattack_components import (
    OfflineSentenceEncoder,
    SpacyPartOfSpeech,
  )

  lists = [
    ["the", "movie", "is", "good"],
    ["run", "is", "a", "run"],
    ["what", "is", "it", "?"],
    ["a", " ", "b"],
  ]
  for tagset in ("universal", "upos", "ptb"):
    assert resources.spacy_tags_many(lists, tagset) == [
      resources.spacy_tags(w, tagset) for w in lists
    ]
  assert resources.spacy_tags(["a", " ", "b"], "ptb")[1] == "_SP"  # the attribute ruler ran

  original, swapped = _swaps(
    "the acting is good and the story is fun",
    3,
    "fine",
    "quickly",
    "nice",
    "well",
    "running",
    "bad",
  )
  batched = SpacyPartOfSpeech()
  one_by_one = SpacyPartOfSpeech()
  expected = [t for t in swapped if PartOfSpeech._check_constraint(one_by_one, t, original)]
  assert batched._check_constraint_many(swapped, original) == expected
  assert 0 < len(expected) < len(swapped)

  encoder = OfflineSentenceEncoder(
    threshold=0.84,
    metric="angular",
    window_size=15,
    skip_text_shorter_than_window=True,
    compare_against_original=False,
  )
  fast = encoder._check_constraint_many(swapped, original)
  assert encoder._model is None  # short texts: nothing encoded
  scores = [t.attack_attrs.pop("similarity_score") for t in swapped]
  slow = SentenceEncoder._check_constraint_many(encoder, swapped, original)
  assert list(fast) == list(slow)
  assert scores == [t.attack_attrs["similarity_score"] for t in swapped] == [1.0] * len(swapped)

  for text in ("Hello, world!", "don't 'quote' me -- ok?", "", "x"):
    assert attacked_text.words_from_text(text) == strings.words_from_text(text)
  assert attacked_text.words_from_text("a b", ["a"]) == ["b"]

  for a, b in (("good", "great"), ("movie", "film"), ("good", "bad")):
    ia, ib = sorted((synonyms.word2index(a), synonyms.word2index(b)))
    reference = torch.nn.CosineSimilarity(dim=0)(
      torch.tensor(synonyms.embedding_matrix[ia]), torch.tensor(synonyms.embedding_matrix[ib])
    )
    assert synonyms.get_cos_sim(a, b) == reference.item()
    assert WordEmbedding.get_cos_sim(synonyms, a, b) == reference.item()
