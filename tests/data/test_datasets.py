import gzip
import json

import ml_collections
import numpy as np
import pytest

from flat_jax.config import base_config
from flat_jax.data.datasets import DataError, load_dataset, stratified_dev_split


def _data_config(**overrides) -> ml_collections.ConfigDict:
  c = base_config().data
  for k, v in overrides.items():
    c[k] = v
  return c


def test_sst2_counts_and_labels(shared_data):
  ds = load_dataset(_data_config(name="sst2"), allow_download=False)
  assert (len(ds.train), len(ds.dev), len(ds.test)) == (6920, 872, 1821)
  assert not ds.dev_from_train
  assert set(ds.train.labels) == {0, 1} and np.bincount(ds.test.labels).tolist() == [912, 909]
  assert ds.train.texts[0] == ds.train.texts[0].lower()


def test_trec_dev_cut_from_train_as_table_1(shared_data):
  ds = load_dataset(_data_config(name="trec"), seed=1111, allow_download=False)
  assert (len(ds.train), len(ds.dev), len(ds.test)) == (5000, 452, 500)
  assert ds.dev_from_train and ds.num_classes == 6
  assert set(ds.dev.labels) == set(range(6))
  # stratified: every class keeps (close to) its share of the 5452 training questions
  full = np.bincount(np.concatenate([ds.train.labels, ds.dev.labels]), minlength=6)
  assert np.all(np.abs(np.bincount(ds.dev.labels, minlength=6) - full * 452 / 5452) <= 1)
  again = load_dataset(_data_config(name="trec"), seed=1111, allow_download=False)
  assert again.dev.texts == ds.dev.texts


def test_imdb_counts_and_br_tags_removed(shared_data):
  ds = load_dataset(_data_config(name="imdb", test_limit=100), allow_download=False)
  assert (len(ds.train), len(ds.dev), len(ds.test)) == (20000, 5000, 100)
  assert np.bincount(ds.dev.labels).tolist() == [2500, 2500]
  assert not any("<br" in t or "br br" in t for t in ds.train.texts[:2000])


def test_agnews_without_train_split_says_where_to_put_it(shared_data):
  with pytest.raises(DataError) as err:
    load_dataset(_data_config(name="agnews"), allow_download=False)
  message = str(err.value)
  assert "train.jsonl.gz" in message and "ag_news" in message and "FLAT_JAX_DATA" in message


def test_flat_jax_data_env_is_used(tmp_path, monkeypatch):
  folder = tmp_path / "trec"
  folder.mkdir()
  for split, rows in {"train": 40, "test": 6}.items():
    with gzip.open(folder / f"{split}.jsonl.gz", "wt") as f:
      for i in range(rows):
        f.write(json.dumps({"text": f"What is thing {i} ?", "label": i % 6}) + "\n")
  monkeypatch.setenv("FLAT_JAX_DATA", str(tmp_path))
  ds = load_dataset(_data_config(name="trec", dev_size=12), allow_download=False)
  assert (len(ds.train), len(ds.dev), len(ds.test)) == (28, 12, 6)
  assert ds.source == str(folder)


def test_train_and_test_limits(shared_data):
  ds = load_dataset(_data_config(name="sst2", train_limit=300, test_limit=50), allow_download=False)
  full = load_dataset(_data_config(name="sst2"), allow_download=False)
  assert len(ds.train) == 300 and len(ds.test) == 50
  assert ds.train.texts == full.train.texts[:300]


def test_stratified_split_sizes_exact():
  labels = np.array([0] * 70 + [1] * 20 + [2] * 10)
  train, dev = stratified_dev_split(labels, 10, seed=0)
  assert len(dev) == 10 and len(train) == 90 and not set(train) & set(dev)
  assert np.bincount(labels[dev]).tolist() == [7, 2, 1]


def _write(path, text):
  path.write_text(text, encoding="utf-8")
  return path


def test_user_csv_with_label_names(tmp_path):
  _write(
    tmp_path / "train.csv",
    "review,sentiment\n"
    + "".join(f'"great movie {i}, really",pos\nawful film {i},neg\n' for i in range(10)),
  )
  _write(tmp_path / "test.tsv", "review\tsentiment\nnice one\tpos\nbad one\tneg\n")
  ds = load_dataset(
    _data_config(
      name="custom",
      path=str(tmp_path),
      text_column="review",
      label_column="sentiment",
      label_names=("neg", "pos"),
      dev_size=4,
    )
  )
  assert ds.label_names == ("neg", "pos")
  assert (len(ds.train), len(ds.dev), len(ds.test)) == (16, 4, 2)
  assert ds.test.labels.tolist() == [1, 0]


@pytest.mark.parametrize(
  "content, line, words",
  [
    ('{"text": "fine", "label": 0}\n{"text": "ok", "label": 7}\n', 2, "out of range"),
    ('{"text": "fine", "label": 0}\n{"text": "   ", "label": 1}\n', 2, "empty text"),
    ('{"text": "fine", "label": 0}\n{"txt": "ok", "label": 1}\n', 2, "missing column 'text'"),
    ('{"text": "fine", "label": 0}\n{"text": "ok", "label": "maybe"}\n', 2, "unknown label"),
    ('{"text": "fine", "label": 0}\n{not json\n', 2, "not valid JSON"),
  ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, content, line, words):
  _write(tmp_path / "train.jsonl", content)
  _write(tmp_path / "test.jsonl", '{"text": "x", "label": 0}\n')
  with pytest.raises(DataError) as err:
    load_dataset(_data_config(name="custom", path=str(tmp_path), label_names=("neg", "pos")))
  assert f"train.jsonl:{line}:" in str(err.value) and words in str(err.value)


def test_malformed_csv_missing_column_and_short_row(tmp_path):
  _write(tmp_path / "test.csv", "text,label\nx,0\n")
  _write(tmp_path / "train.csv", "sentence,label\nx,0\n")
  with pytest.raises(DataError, match=r"train.csv:1: missing column 'text'"):
    load_dataset(_data_config(name="custom", path=str(tmp_path), label_names=("a", "b")))
  _write(tmp_path / "train.csv", "text,label\nfine,0\nshort\n")
  with pytest.raises(DataError, match=r"train.csv:3: row has fewer fields"):
    load_dataset(_data_config(name="custom", path=str(tmp_path), label_names=("a", "b")))
