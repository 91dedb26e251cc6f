import importlib.util
import pathlib
import subprocess
import sys

import pytest

from flat_jax.config import ConfigError, base_config, validate

CONFIGS = sorted((pathlib.Path(__file__).parents[1] / "configs").glob("*.py"))


def _load(path):
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def test_all_sixteen_pairs_and_default_exist_and_validate():
  names = {p.stem for p in CONFIGS}
  pairs = {f"{d}_{m}" for d in ("sst2", "imdb", "agnews", "trec") for m in ("lstm", "cnn", "bert", "deberta")}
  assert pairs | {"default"} <= names
  for path in CONFIGS:
    validate(_load(path))


def test_paper_settings_in_configs():
  imdb = _load(CONFIGS[0].parent / "imdb_lstm.py")
  assert imdb.data.max_length == 250 and imdb.train.learning_rate == 0.01 and imdb.train.batch_size == 64
  trec = _load(CONFIGS[0].parent / "trec_cnn.py")
  assert trec.data.max_length == 15 and tuple(trec.model.cnn_kernel_sizes) == (3, 4, 5)
  bert = _load(CONFIGS[0].parent / "agnews_bert.py")
  assert bert.train.optimizer == "adamw" and bert.train.learning_rate == 1e-5 and bert.train.grad_clip == 10


def test_unknown_key_is_named():
  c = base_config()
  c.train.unlocked = True  # ConfigDict is unlocked here; a config file could do the same
  with pytest.raises(ConfigError, match="unknown config key 'train.unlocked'"):
    validate(c)


@pytest.mark.parametrize("key, value, words", [
    ("mode", "fancy", "must be one of base, adv, flat"),
    ("train.batch_size", 0, "must be > 0"),
    ("model.dropout", 1.5, "must be in [0, 1)"),
    ("eval.attacks", ("textfooler", "nope"), "unknown entries ['nope']"),
    ("data.max_length", "long", "expected int"),
])
def test_bad_value_is_named(key, value, words):
  c = base_config()
  section, name = key.split(".") if "." in key else (None, key)
  target = c[section] if section else c
  with target.ignore_type():
    target[name] = value
  with pytest.raises(ConfigError) as err:
    validate(c)
  assert f"'{key}'" in str(err.value) and words in str(err.value)


def test_cli_rejects_unknown_override_and_bad_value(tmp_path):
  root = pathlib.Path(__file__).parents[1]
  base = [sys.executable, "-m", "flat_jax.main", "--config", str(root / "configs/sst2_cnn.py"),
          "--workdir", str(tmp_path / "w")]
  unknown = subprocess.run(base + ["--config.train.epoch=3"], capture_output=True, text=True, cwd=root)
  assert unknown.returncode != 0 and "epoch" in unknown.stderr
  bad = subprocess.run(base + ["--config.mode=fancy"], capture_output=True, text=True, cwd=root)
  assert bad.returncode == 2 and "config key 'mode'" in bad.stderr
