"""The persistent compilation cache: a second process loads what the first compiled."""

import os
import subprocess
import sys

_PROGRAM = """
import jax, jax.numpy as jnp
from flat_jax import runtime
runtime.enable_compilation_cache()
print(jax.config.jax_compilation_cache_dir)
print(float(jax.jit(lambda x: jnp.tanh(x) @ x.T)(jnp.ones((3, 3))).sum()))
"""


def _run(cache):
  env = dict(os.environ, FLAT_JAX_CACHE=str(cache), JAX_PLATFORMS="cpu")
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  done = subprocess.run([sys.executable, "-c", _PROGRAM], env=env, capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-2000:]
  return done.stdout.split()


def test_compiled_programs_are_kept_and_reused(tmp_path):
  folder, first = _run(tmp_path)
  assert folder == str(tmp_path / "jax_compilation")
  entries = set(os.listdir(folder))
  assert entries  # the jitted program was written
  _, second = _run(tmp_path)
  assert second == first
  assert set(os.listdir(folder)) == entries  # loaded, not compiled and written again
