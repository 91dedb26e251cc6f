"""The built wheel is a working tool on its own: installed into a fresh virtual environment (offline:
the wheel from this checkout, its dependencies those already downloaded into the running one), the
`flat-jax` console script runs a shipped preset by name from outside the checkout."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_the_wheel_installs_and_runs_a_preset_outside_the_checkout(tmp_path, shared_data):
  # built from a copy: setuptools writes build/ and *.egg-info/ into the tree it builds
  source = tmp_path / "source"
  shutil.copytree(
    REPO,
    source,
    symlinks=True,
    ignore=shutil.ignore_patterns(
      ".git", ".venv", "runs", "results", "build", "*.egg-info", "__pycache__", ".pytest_cache"
    ),
  )
  dist = tmp_path / "dist"
  subprocess.run(
    [
      sys.executable,
      "-m",
      "pip",
      "wheel",
      "--quiet",
      "--no-deps",
      "--no-index",
      "--no-build-isolation",
      "--wheel-dir",
      str(dist),
      str(source),
    ],
    check=True,
  )
  [wheel] = dist.glob("flat_jax-*.whl")
  names = zipfile.ZipFile(wheel).namelist()
  assert {"flat_jax/configs/sst2_cnn.py", "flat_jax/configs/default.py", "flat_jax/main.py"} <= set(
    names
  )
  assert not any(n.startswith(("tests/", "benchmarks/", "configs/")) for n in names)
  entry_points = next(n for n in names if n.endswith("entry_points.txt"))
  assert "flat-jax = flat_jax.main:cli" in zipfile.ZipFile(wheel).read(entry_points).decode()

  env = tmp_path / "env"
  venv.create(env, with_pip=True)
  python = env / "bin" / "python"
  site = subprocess.run(
    [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
    capture_output=True,
    text=True,
    check=True,
  ).stdout.strip()
  # the dependencies, already downloaded: the running environment's packages, after the new one's
  # own (a path line in a .pth file adds the folder without running that folder's .pth files, so
  # this checkout's editable install does not come along)
  (pathlib.Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
  subprocess.run(
    [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
    check=True,
  )

  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  where = subprocess.run(
    [str(python), "-c", "import flat_jax; print(flat_jax.__file__)"],
    cwd=elsewhere,
    capture_output=True,
    text=True,
    check=True,
  ).stdout.strip()
  assert where.startswith(site), where
  run = subprocess.run(
    [
      str(env / "bin" / "flat-jax"),
      "--config",
      "trec_cnn",
      "--workdir",
      "run",
      "--config.data.train_limit=200",
      "--config.train.epochs=1",
      "--config.eval.num_examples=4",
      "--config.tensorboard=True",
    ],
    cwd=elsewhere,
    capture_output=True,
    text=True,
    env={**os.environ, "FLAT_JAX_DATA": str(shared_data)},
  )
  assert run.returncode == 0, run.stderr[-3000:]
  results = json.loads((elsewhere / "run" / "results.json").read_text())
  assert results["status"] == "finished" and results["dataset"] == "trec"
  assert (
    results["after_attack"]["textfooler"]["num_examples"] == 4
  )  # offline attack resources found
  assert (elsewhere / "run" / "report" / "index.html").exists()
  assert list((elsewhere / "run" / "tensorboard").glob("events.out.tfevents.*"))
