"""The data-parallel train step communicates once per step for its gradients, not once per parameter.

What XLA emits for flat_jax.training.step (checked with 1 and 4 simulated CPU devices):
  1. an all-reduce of one f32[] scalar: the global example weight, which divides the local loss
     before differentiation (so the psum of the gradients is the gradient of the global mean);
  2. ONE all-reduce of a tuple: every trainable parameter's gradient, plus the metric sums, which
     XLA's all-reduce combiner folds into the same operation.
Frozen word vectors get no gradient traffic at all, and there is no other collective (no
all-gather, reduce-scatter, permute). The count does not grow with the number of devices.
The step is compiled in a subprocess: the device count is read when jax is imported.
"""

import json
import os
import pathlib
import subprocess
import sys
from collections import Counter

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _collectives(devices: int, models: str) -> list[dict]:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)  # the script sets the device count before importing jax
  done = subprocess.run(
    [
      sys.executable,
      str(ROOT / "benchmarks" / "collectives.py"),
      "--devices",
      str(devices),
      "--models",
      models,
      "--json",
    ],
    env=env,
    capture_output=True,
    text=True,
    cwd=ROOT,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(done.stdout.strip().splitlines()[-1])


def _check_one_gradient_all_reduce(result: dict) -> None:
  ops = result["collectives"]
  assert Counter(c["op"] for c in ops) == {"all-reduce": 2}, ops
  scalar = [c for c in ops if len(c["shapes"]) == 1 and tuple(c["shapes"][0][1]) == ()]
  assert len(scalar) == 1, "one scalar all-reduce: the global weight that normalises the loss"
  (grads,) = [c for c in ops if c is not scalar[0]]
  communicated = Counter(tuple(dims) for _, dims in grads["shapes"])
  trainable = Counter(tuple(s) for s in result["trainable"])
  missing = trainable - communicated
  assert not missing, f"gradients not in the combined all-reduce: {missing}"
  # what remains beside the gradients are the metric sums (scalars)
  assert set(communicated - trainable) <= {()}, communicated - trainable
  assert all(c["shapes"][0][0] == "f32" for c in ops)
  for frozen in result["frozen"]:
    assert tuple(frozen) not in communicated, f"frozen embedding {frozen} is communicated"


@pytest.fixture(scope="module")
def four_devices():
  return _collectives(4, "cnn,lstm")


@pytest.mark.parametrize("index,model", [(0, "cnn"), (1, "lstm")])
def test_four_devices_one_gradient_all_reduce_per_step(four_devices, index, model):
  result = four_devices[index]
  assert (result["model"], result["devices"]) == (model, 4)
  _check_one_gradient_all_reduce(result)
  if model != "bert":
    assert result["frozen"], "the word vectors are frozen (their gradient must not be sent)"


def test_one_device_emits_the_same_program_shape(four_devices):
  (one,) = _collectives(1, "cnn")
  _check_one_gradient_all_reduce(one)
  assert [len(c["shapes"]) for c in one["collectives"]] == [
    len(c["shapes"]) for c in four_devices[0]["collectives"]
  ]
