import struct

import numpy as np
import pytest

from flat_jax.data.embeddings import EmbeddingError, load_embeddings
from flat_jax.data.vocab import Vocab

VECTORS = {"good": [1.0, 2.0, 3.0], "movie": [-1.0, 0.5, 0.25], "Film": [0.0, 0.0, 9.0]}


def _vocab():
  return Vocab.build(["good movie film unseen"])  # 'film' only as 'Film' in the file: case fallback


def _write_text(path, header):
  with open(path, "w", encoding="utf-8") as f:
    if header:
      f.write(f"{len(VECTORS)} 3\n")
    for w, v in VECTORS.items():
      f.write(w + " " + " ".join(map(str, v)) + "\n")


def _write_bin(path):
  with open(path, "wb") as f:
    f.write(f"{len(VECTORS)} 3\n".encode())
    for w, v in VECTORS.items():
      f.write(w.encode() + b" " + struct.pack("<3f", *v) + b"\n")


@pytest.mark.parametrize("kind", ["word2vec_bin", "word2vec_text", "glove_text"])
def test_reads_each_format_and_builds_matrix(tmp_path, kind):
  path = tmp_path / ("vecs.bin" if kind == "word2vec_bin" else "vecs.txt")
  _write_bin(path) if kind == "word2vec_bin" else _write_text(
    path, header=(kind == "word2vec_text")
  )
  vocab = _vocab()
  emb = load_embeddings(vocab, str(path))  # format detected
  assert kind.split("_")[0] in emb.source
  m = emb.matrix
  assert m.shape == (len(vocab), 3) and m.dtype == np.float32
  assert np.all(m[0] == 0)  # <pad>
  assert np.all(np.abs(m[1]) <= 0.05) and np.any(m[1] != 0)  # <unk>
  np.testing.assert_allclose(m[vocab.index["good"]], VECTORS["good"])
  np.testing.assert_allclose(m[vocab.index["film"]], VECTORS["Film"])
  assert np.all(np.abs(m[vocab.index["unseen"]]) <= 0.01)
  assert emb.found == 3 and emb.coverage == pytest.approx(3 / 4)


def test_missing_file_and_ragged_rows(tmp_path):
  with pytest.raises(EmbeddingError, match="no such file"):
    load_embeddings(_vocab(), str(tmp_path / "nope.txt"))
  bad = tmp_path / "bad.txt"
  bad.write_text("good 1 2 3\nmovie 1 2\n")
  with pytest.raises(EmbeddingError, match="bad.txt:2"):
    load_embeddings(_vocab(), str(bad))


def test_offline_glove_fallback_covers_sst2_words():
  vocab = Vocab.build(["the movie was a clever and funny treat"])
  emb = load_embeddings(vocab)
  assert "GloVe" in emb.source and emb.matrix.shape[1] == 50
  assert emb.coverage == 1.0


def test_offline_300d_spacy_vectors_by_name_with_case_fallback():
  """model.embeddings=spacy_md: 300-d rows looked up by spaCy's string hash; 'mark' has only a
  'Mark' key; words that are no key stay small noise."""
  vocab = Vocab.build(["good bad movie film mark zzzqxv"])
  emb = load_embeddings(vocab, "spacy_md")
  m = emb.matrix
  assert "en_core_web_md" in emb.source and m.shape == (len(vocab), 300)
  assert emb.found == 5 and np.all(np.abs(m[vocab.index["zzzqxv"]]) <= 0.01)
  unit = lambda w: m[vocab.index[w]] / np.linalg.norm(m[vocab.index[w]])
  assert 0.75 < float(unit("movie") @ unit("film")) < 0.95  # related, not identical
  assert float(unit("good") @ unit("mark")) < 0.6
  assert np.linalg.norm(m[vocab.index["mark"]]) > 1.0
  assert load_embeddings(vocab, "glove_50d").matrix.shape[1] == 50


def test_rows_rescaled_to_one_norm(tmp_path):
  path = tmp_path / "vecs.txt"
  _write_text(path, header=False)
  vocab = _vocab()
  m = load_embeddings(vocab, str(path), norm=2.0).matrix
  for word in ("good", "movie", "film"):
    assert np.linalg.norm(m[vocab.index[word]]) == pytest.approx(2.0, rel=1e-5)
  np.testing.assert_allclose(
    m[vocab.index["good"]],
    np.array(VECTORS["good"]) * 2 / np.linalg.norm(VECTORS["good"]),
    rtol=1e-5,
  )
  assert np.all(np.abs(m[vocab.index["unseen"]]) <= 0.01)  # only pretrained rows


def test_a_garbage_word2vec_binary_is_named_not_a_traceback(tmp_path):
  path = tmp_path / "vectors.bin"
  path.write_bytes(b"\x00\x13garbage\xff\xfe" * 50)
  with pytest.raises(EmbeddingError, match=r"vectors.bin:1: not a word2vec binary file"):
    load_embeddings(_vocab(), str(path))
