"""Dataset registry and loading: the four datasets of the paper and user files.

A dataset is found in this order: `config.data.path`, `$FLAT_JAX_DATA/<dir>`, the team's
`../shared/data/<dir>` beside this checkout, and finally a Hugging Face `datasets` download (for
users with the network), cached as JSON lines under `$FLAT_JAX_DATA` or ~/.cache/flat_jax/data.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import logging
import os
import sys
import pathlib
from typing import Sequence

import numpy as np

from flat_jax.data.text import clean_text

SPLITS = ("train", "dev", "test")
FILE_SUFFIXES = (".jsonl.gz", ".jsonl", ".json", ".csv.gz", ".csv", ".tsv.gz", ".tsv")
SHARED_DATA = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"


class DataError(ValueError):
  """Bad or missing data; the message names the file (and line) or says where to put it."""


def known_label_names(data_config) -> tuple[str, ...]:
  """The class names a run's config fixes without reading data: data.label_names, else the
  registry's; () for custom data whose names were inferred from its file."""
  if data_config.label_names:
    return tuple(data_config.label_names)
  return REGISTRY[data_config.name].label_names if data_config.name in REGISTRY else ()


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  name: str
  directory: str  # folder name under $FLAT_JAX_DATA and ../shared/data
  label_names: tuple[str, ...]
  max_length: int  # the paper's padded length (Table 6)
  min_freq: int  # low-frequency threshold of the word vocabulary
  dev_size: int  # cut from train when there is no dev split (Table 1)
  attack_train_examples: int  # training examples attacked per round; 0 = all (the paper)
  hf_id: str = ""
  hf_text: tuple[str, ...] = ("text",)
  hf_label: str = "label"
  hf_label_map: tuple[int, ...] = ()  # HF label id -> our label id, when the orders differ

  @property
  def num_classes(self) -> int:
    return len(self.label_names)


REGISTRY: dict[str, DatasetSpec] = {
  "sst2": DatasetSpec(
    "sst2",
    "sst2",
    ("negative", "positive"),
    max_length=50,
    min_freq=1,
    dev_size=872,
    attack_train_examples=0,
    hf_id="SetFit/sst2",
  ),
  "imdb": DatasetSpec(
    "imdb",
    "imdb",
    ("negative", "positive"),
    max_length=250,
    min_freq=5,
    dev_size=5000,
    attack_train_examples=10000,
    hf_id="stanfordnlp/imdb",
  ),
  "agnews": DatasetSpec(
    "agnews",
    "ag_news",
    ("World", "Sports", "Business", "Sci/Tech"),
    max_length=50,
    min_freq=5,
    dev_size=6000,
    attack_train_examples=10000,
    hf_id="fancyzhx/ag_news",
  ),
  # Our label order (from the harvardnlp files) differs from Hugging Face's coarse_label order
  # (ABBR, ENTY, DESC, HUM, LOC, NUM); hf_label_map translates.
  "trec": DatasetSpec(
    "trec",
    "trec",
    ("DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"),
    max_length=15,
    min_freq=1,
    dev_size=452,
    attack_train_examples=0,
    hf_id="CogComp/trec",
    hf_label="coarse_label",
    hf_label_map=(2, 1, 0, 3, 4, 5),
  ),
}


@dataclasses.dataclass
class Split:
  texts: list[str]  # cleaned
  labels: np.ndarray  # int32
  raw_texts: list[str]  # as in the file

  def __len__(self) -> int:
    return len(self.texts)

  def take(self, indices) -> "Split":
    indices = list(indices)
    return Split(
      [self.texts[i] for i in indices],
      self.labels[indices].astype(np.int32),
      [self.raw_texts[i] for i in indices],
    )


@dataclasses.dataclass
class TextDataset:
  name: str
  label_names: tuple[str, ...]
  train: Split
  dev: Split
  test: Split
  source: str
  dev_from_train: bool

  @property
  def num_classes(self) -> int:
    return len(self.label_names)


def _open_text(path: pathlib.Path):
  raw = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
  return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def _find_split_file(directory: pathlib.Path, split: str) -> pathlib.Path | None:
  for suffix in FILE_SUFFIXES:
    candidate = directory / f"{split}{suffix}"
    if candidate.is_file():
      return candidate
  return None


def _parse_label(value, label_names: Sequence[str], path, line) -> int:
  if isinstance(value, bool) or value is None or value == "":
    raise DataError(f"{path}:{line}: missing or invalid label {value!r}")
  if str(value).strip() in label_names:  # a label's name first: ("-1", "1") maps -1 and 1
    return list(label_names).index(str(value).strip())
  if isinstance(value, (int, np.integer)) or (
    isinstance(value, str) and value.strip().lstrip("-").isdigit()
  ):
    label = int(value)
    if not 0 <= label < len(label_names):
      raise DataError(
        f"{path}:{line}: label {label} out of range 0..{len(label_names) - 1} "
        f"(labels: {', '.join(label_names)})"
      )
    return label
  if isinstance(value, str) and value.strip() in label_names:
    return label_names.index(value.strip())
  raise DataError(
    f"{path}:{line}: unknown label {value!r}; expected an id 0..{len(label_names) - 1} "
    f"or one of {', '.join(label_names)}"
  )


def read_rows(
  path: pathlib.Path, text_column: str, label_column: str
) -> list[tuple[int, str, object]]:
  """(line number, text, raw label) for every row of a JSON-lines, CSV or TSV file."""
  try:
    rows = _read_rows(path, text_column, label_column)
  except UnicodeDecodeError as e:
    line = _line_of_byte(path, e.start)
    raise DataError(
      f"{path}:{line}: not UTF-8 text ({e.reason}); convert the file, e.g. iconv -f latin1 -t utf-8"
    ) from None
  if not rows:
    raise DataError(f"{path}: no rows")
  return rows


def _line_of_byte(path: pathlib.Path, offset: int) -> int:
  """The line of a decoding error: the first line that does not decode."""
  opener = gzip.open if path.name.endswith(".gz") else open
  with opener(path, "rb") as f:
    for line_no, raw in enumerate(f, start=1):
      try:
        raw.decode("utf-8")
      except UnicodeDecodeError:
        return line_no
  return 1


def _read_rows(
  path: pathlib.Path, text_column: str, label_column: str
) -> list[tuple[int, str, object]]:
  name = path.name.removesuffix(".gz")
  rows = []
  # a review can hold more than the csv module's default 128 KiB field limit
  csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
  with _open_text(path) as f:
    if name.endswith((".jsonl", ".json")):
      for line_no, line in enumerate(f, start=1):
        if not line.strip():
          continue
        try:
          obj = json.loads(line)
        except json.JSONDecodeError as e:
          raise DataError(f"{path}:{line_no}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
          raise DataError(f"{path}:{line_no}: expected a JSON object per line")
        for column in (text_column, label_column):
          if column not in obj:
            raise DataError(f"{path}:{line_no}: missing column '{column}' (has: {', '.join(obj)})")
        rows.append((line_no, obj[text_column], obj[label_column]))
    else:
      reader = csv.DictReader(f, delimiter="\t" if name.endswith(".tsv") else ",")
      header = reader.fieldnames or []
      for column in (text_column, label_column):
        if column not in header:
          raise DataError(
            f"{path}:1: missing column '{column}' in header (has: {', '.join(header)})"
          )
      for record in reader:
        line_no = reader.line_num
        if record.get(text_column) is None or record.get(label_column) is None:
          raise DataError(f"{path}:{line_no}: row has fewer fields than the header")
        rows.append((line_no, record[text_column], record[label_column]))
  return rows


def load_split_file(
  path: pathlib.Path, label_names: Sequence[str], text_column="text", label_column="label"
) -> Split:
  texts, labels, raw = [], [], []
  for line_no, text, label in read_rows(path, text_column, label_column):
    if not isinstance(text, str) or not text.strip():
      raise DataError(f"{path}:{line_no}: empty text")
    cleaned = clean_text(text)
    if not cleaned:
      raise DataError(f"{path}:{line_no}: text has no words after cleaning: {text[:60]!r}")
    labels.append(_parse_label(label, label_names, path, line_no))
    texts.append(cleaned)
    raw.append(text)
  if not texts:
    raise DataError(f"{path}: no examples")
  return Split(texts, np.asarray(labels, dtype=np.int32), raw)


def _infer_label_names(path: pathlib.Path, text_column: str, label_column: str) -> tuple[str, ...]:
  values = {row[2] for row in read_rows(path, text_column, label_column)}
  numeric = all(
    isinstance(v, int) or (isinstance(v, str) and v.strip().lstrip("-").isdigit()) for v in values
  )
  if numeric:
    ids = sorted({int(v) for v in values})
    if ids != list(range(len(ids))):
      names = ", ".join(f'"{i}"' for i in ids)
      raise DataError(
        f"{path}: the labels are {ids}, not the ids 0..{len(ids) - 1}: name them, "
        f"e.g. --config.data.label_names='({names})' (in the order of the class ids "
        f"you want), or renumber them from 0"
      )
    return tuple(str(i) for i in ids)
  return tuple(sorted(str(v).strip() for v in values))


def stratified_dev_split(
  labels: np.ndarray, dev_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
  """Indices (train, dev): dev holds `dev_size` examples with the label proportions of `labels`."""
  if not 0 < dev_size < len(labels):
    raise DataError(f"dev_size {dev_size} must be between 1 and {len(labels) - 1}")
  rng = np.random.RandomState(seed)
  classes, counts = np.unique(labels, return_counts=True)
  exact = counts * dev_size / len(labels)
  take = np.floor(exact).astype(int)
  for i in np.argsort(-(exact - take), kind="stable")[: dev_size - take.sum()]:
    take[i] += 1
  dev = np.concatenate(
    [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
  )
  dev = np.sort(dev)
  train = np.setdiff1d(np.arange(len(labels)), dev)
  return train, dev


def _candidate_dirs(spec_dir: str, path: str) -> list[pathlib.Path]:
  dirs = []
  if path:
    dirs.append(pathlib.Path(path).expanduser())
  if os.environ.get("FLAT_JAX_DATA"):
    dirs.append(pathlib.Path(os.environ["FLAT_JAX_DATA"]).expanduser() / spec_dir)
  dirs.append(SHARED_DATA / spec_dir)
  return dirs


def _download_cache_dir(spec: DatasetSpec) -> pathlib.Path:
  root = os.environ.get("FLAT_JAX_DATA") or os.path.expanduser("~/.cache/flat_jax/data")
  return pathlib.Path(root) / spec.directory


def download(spec: DatasetSpec) -> pathlib.Path:
  """Fetches a dataset with Hugging Face `datasets` and writes it as {split}.jsonl.gz."""
  try:
    import datasets as hf_datasets

    hub = hf_datasets.load_dataset(spec.hf_id)
  except Exception as e:  # offline, hub error, missing package: all end in the same advice
    raise DataError(
      f"could not download {spec.hf_id} from the Hugging Face hub ({type(e).__name__}: "
      f"{str(e)[:200]})"
    ) from None
  target = _download_cache_dir(spec)
  target.mkdir(parents=True, exist_ok=True)
  names = {"train": "train", "validation": "dev", "test": "test"}
  for hub_split, ours in names.items():
    if hub_split not in hub:
      continue
    with gzip.open(target / f"{ours}.jsonl.gz", "wt", encoding="utf-8") as f:
      for row in hub[hub_split]:
        text = " ".join(str(row[c]) for c in spec.hf_text)
        label = int(row[spec.hf_label])
        if spec.hf_label_map:
          label = spec.hf_label_map[label]
        f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
  return target


def _locate(spec: DatasetSpec, path: str, allow_download: bool) -> pathlib.Path:
  if path:  # a path that is set is the user's data: never fall back to another copy silently
    directory = pathlib.Path(path).expanduser()
    if _find_split_file(directory, "train") and _find_split_file(directory, "test"):
      return directory
    raise DataError(
      f"data.path={path}: {'no such folder' if not directory.is_dir() else 'no train and test files there'} "
      f"(expected train.<{'|'.join(s.lstrip('.') for s in FILE_SUFFIXES)}> and test.<...>); "
      f"leave data.path empty to use the {spec.directory} copy found by the usual search"
    )
  looked = _candidate_dirs(spec.directory, path)
  for directory in looked:
    if _find_split_file(directory, "train") and _find_split_file(directory, "test"):
      return directory
  cached = _download_cache_dir(spec)
  if _find_split_file(cached, "train") and _find_split_file(cached, "test"):
    return cached
  partial = [d for d in looked if d.is_dir() and any(_find_split_file(d, s) for s in SPLITS)]
  if allow_download and spec.hf_id:
    try:
      return download(spec)
    except DataError as e:
      reason = str(e)
  else:
    reason = "download not allowed"
  where = "\n  ".join(str(d) for d in looked)
  have = f"\nFound only some splits in: {', '.join(map(str, partial))}." if partial else ""
  raise DataError(
    f"dataset '{spec.name}': no train and test split found. Looked in:\n  {where}{have}\n"
    f'Put train.jsonl.gz and test.jsonl.gz (one JSON object per line: {{"text": ..., "label": '
    f"int}}; labels {', '.join(f'{i}={n}' for i, n in enumerate(spec.label_names))}) in one of those "
    f"folders, set data.path or $FLAT_JAX_DATA, or run once with network access so that "
    f"'{spec.hf_id}' can be downloaded ({reason})."
  )


def load_dataset(data_config, seed: int = 1111, allow_download: bool = True) -> TextDataset:
  """Loads, cleans and splits the configured dataset; applies train/test limits."""
  if data_config.name == "custom":
    if not data_config.path:
      raise DataError(
        "data.name='custom' needs data.path: a folder with train.<jsonl|csv|tsv> and "
        "test.<...> (and optionally dev.<...>)"
      )
    directory = pathlib.Path(data_config.path).expanduser()
    train_file = _find_split_file(directory, "train")
    if train_file is None or _find_split_file(directory, "test") is None:
      raise DataError(
        f"{directory}: needs train and test files with one of the suffixes "
        f"{', '.join(FILE_SUFFIXES)}"
      )
    label_names = tuple(data_config.label_names) or _infer_label_names(
      train_file, data_config.text_column, data_config.label_column
    )
    default_dev = max(
      1, len(read_rows(train_file, data_config.text_column, data_config.label_column)) // 10
    )
  else:
    spec = REGISTRY[data_config.name]
    directory = _locate(spec, data_config.path, allow_download)
    label_names = spec.label_names
    default_dev = spec.dev_size
  columns = dict(text_column=data_config.text_column, label_column=data_config.label_column)
  splits = {}
  for split in SPLITS:
    file = _find_split_file(directory, split)
    if file is not None:
      splits[split] = load_split_file(file, label_names, **columns)
  train = splits["train"]
  if len(label_names) < 2 or len(np.unique(train.labels)) < 2:
    present = sorted({label_names[i] for i in np.unique(train.labels)})
    raise DataError(
      f"{directory}: the training split has {len(present)} class ({', '.join(present)}); "
      f"a classifier needs at least two"
    )
  dev_from_train = "dev" not in splits
  if dev_from_train:
    train_idx, dev_idx = stratified_dev_split(
      train.labels, data_config.dev_size or default_dev, seed
    )
    splits["dev"], train = train.take(dev_idx), train.take(train_idx)
  if data_config.train_limit:
    train = train.take(range(min(data_config.train_limit, len(train))))
  test = splits["test"]
  if data_config.test_limit:
    test = test.take(range(min(data_config.test_limit, len(test))))
  logging.info(
    "dataset %s from %s: train %d, dev %d%s, test %d, classes %d",
    data_config.name,
    directory,
    len(train),
    len(splits["dev"]),
    " (cut from train)" if dev_from_train else "",
    len(test),
    len(label_names),
  )
  return TextDataset(
    data_config.name, tuple(label_names), train, splits["dev"], test, str(directory), dev_from_train
  )
