import importlib.util
import pathlib
import subprocess
import sys

import pytest

from flat_jax.config import PRESET_DIR, ConfigError, base_config, config_file, presets, validate

CONFIGS = [PRESET_DIR / f"{name}.py" for name in presets()]


def _load(path):
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def test_all_sixteen_pairs_and_default_exist_and_validate():
  names = {p.stem for p in CONFIGS}
  pairs = {
    f"{d}_{m}"
    for d in ("sst2", "imdb", "agnews", "trec")
    for m in ("lstm", "cnn", "bert", "deberta")
  }
  assert pairs | {"default"} <= names
  for path in CONFIGS:
    validate(_load(path))


def test_config_takes_a_preset_name_or_a_file():
  assert config_file("sst2_cnn") == str(PRESET_DIR / "sst2_cnn.py")
  assert config_file("default.py") == str(PRESET_DIR / "default.py")
  checkout = pathlib.Path(__file__).parents[1] / "configs" / "trec_cnn.py"  # the link in a checkout
  assert config_file(str(checkout)) == str(checkout) and checkout.resolve().parent == PRESET_DIR
  assert config_file(f"{checkout}:arg") == f"{checkout}:arg"
  with pytest.raises(
    ConfigError,
    match=r"--config sst2_cmm: no such config file or preset \(presets: "
    r"agnews_bert, .*sst2_cnn",
  ):
    config_file("sst2_cmm")
  with pytest.raises(ConfigError, match="no such config file"):
    config_file("elsewhere/sst2_cnn.py")  # a path is a path, never a preset


def test_paper_settings_in_configs():
  imdb = _load(CONFIGS[0].parent / "imdb_lstm.py")
  assert (
    imdb.data.max_length == 250 and imdb.train.learning_rate == 0.01 and imdb.train.batch_size == 64
  )
  trec = _load(CONFIGS[0].parent / "trec_cnn.py")
  assert trec.data.max_length == 15 and tuple(trec.model.cnn_kernel_sizes) == (3, 4, 5)
  bert = _load(CONFIGS[0].parent / "agnews_bert.py")
  assert (
    bert.train.optimizer == "adamw"
    and bert.train.learning_rate == 1e-5
    and bert.train.grad_clip == 10
  )


def test_unknown_key_is_named():
  c = base_config()
  c.train.unlocked = True  # ConfigDict is unlocked here; a config file could do the same
  with pytest.raises(ConfigError, match="unknown config key 'train.unlocked'"):
    validate(c)


@pytest.mark.parametrize(
  "key, value, words",
  [
    ("mode", "fancy", "must be one of base, adv, flat"),
    ("train.batch_size", 0, "must be > 0"),
    ("model.dropout", 1.5, "must be in [0, 1)"),
    ("eval.attacks", ("textfooler", "nope"), "unknown entries ['nope']"),
    ("data.max_length", "long", "expected int"),
    ("attack.search", "parallel", "must be one of batched, textattack"),
    ("attack.lockstep_examples", 0, "must be > 0"),
    ("attack.sentence_encoder", "/no/such/use_folder", "must be one of flax, numpy or a"),
  ],
)
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
  base = [
    sys.executable,
    "-m",
    "flat_jax.main",
    "--config",
    str(root / "configs/sst2_cnn.py"),
    "--workdir",
    str(tmp_path / "w"),
  ]
  unknown = subprocess.run(
    base + ["--config.train.epoch=3"], capture_output=True, text=True, cwd=root
  )
  assert unknown.returncode != 0 and "epoch" in unknown.stderr
  bad = subprocess.run(base + ["--config.mode=fancy"], capture_output=True, text=True, cwd=root)
  assert bad.returncode == 2 and "config key 'mode'" in bad.stderr
