"""Process-wide settings shared by every stage: the cache folder and JAX's compilation cache."""

from __future__ import annotations

import os
import pathlib

CACHE_ENV = "FLAT_JAX_CACHE"


def default_cache_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get(CACHE_ENV) or "~/.cache/flat_jax").expanduser()


def enable_compilation_cache() -> None:
  """Keeps compiled XLA programs on disk (`<cache>/jax_compilation`), so a resumed run, the next
  stage with the same shapes and each attack worker process load them instead of compiling again.
  A loaded executable is the compiled one: the numbers are unchanged. The folder only grows (a few
  MB per config); delete it at any time. Call before anything is compiled; a folder already set
  (JAX_COMPILATION_CACHE_DIR) is kept."""
  import jax

  if jax.config.jax_compilation_cache_dir is None:
    jax.config.update("jax_compilation_cache_dir", str(default_cache_dir() / "jax_compilation"))
  # most of our programs compile in well under JAX's default 1 s threshold, and a run has dozens
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
