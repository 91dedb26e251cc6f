import pathlib

import pytest

from flat_jax.data.datasets import SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  if not (SHARED_DATA / "sst2" / "train.jsonl.gz").exists():
    pytest.fail(f"offline datasets not found at {SHARED_DATA}: the tests need ../shared beside the checkout")
  return SHARED_DATA
