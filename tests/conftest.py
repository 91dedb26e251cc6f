import pathlib

import pytest

from flat_jax import pipeline
from flat_jax.config import preset
from flat_jax.data.datasets import SHARED_DATA, load_dataset


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  if not (SHARED_DATA / "sst2" / "train.jsonl.gz").exists():
    pytest.fail(
      f"offline datasets not found at {SHARED_DATA}: the tests need ../shared beside the checkout"
    )
  return SHARED_DATA


# The victim of the attack and evaluation tests: one small SST-2 CNN, trained once per session (no
# test writes into its workdir: records go to each test's tmp_path, evaluations to a copy).
@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, shared_data):
  workdir = tmp_path_factory.mktemp("victim")
  c = preset("sst2", "cnn")
  c.data.train_limit = 1500
  c.data.test_limit = 40
  c.train.epochs = 3
  c.stage = "train"
  pipeline.run(c, workdir)
  return workdir


@pytest.fixture(scope="session")
def sst2_splits(shared_data):
  return load_dataset(preset("sst2", "cnn").data)
