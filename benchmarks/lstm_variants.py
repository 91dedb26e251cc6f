"""Forward + backward time of the LSTM encoder as flat_jax builds it (flax nn.RNN over an
OptimizedLSTMCell: the input projection runs inside the scan, one small matmul per time step)
against the same function with the input projection hoisted out of the scan (one matmul for all
steps, as cuDNN and oneDNN do), both jitted. Evidence for a change to flat_jax/models/lstm.py.

  .venv/bin/python benchmarks/lstm_variants.py [--length 50] [--batch 128] [--repeats 7]

Batch 128 = 64 rows x (original, twin), the shape of a FLAT step.
"""
from __future__ import annotations

import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def flax_rnn(params, x, hidden):
  return nn.RNN(nn.OptimizedLSTMCell(hidden)).apply({"params": params}, x)


def hoisted_scan(params, x, hidden):
  """The same LSTM from the same params: x @ [W_ii W_if W_ig W_io] for all steps first, then a scan
  whose body does only the recurrent matmul."""
  cell = params["cell"]
  w_in = jnp.concatenate([cell[f"i{g}"]["kernel"] for g in "ifgo"], 1)
  w_h = jnp.concatenate([cell[f"h{g}"]["kernel"] for g in "ifgo"], 1)
  bias = jnp.concatenate([cell[f"h{g}"]["bias"] for g in "ifgo"])
  projected = jnp.einsum("bld,dg->lbg", x, w_in) + bias          # (L, B, 4H)

  def step(carry, xp):
    c, h = carry
    i, f, g, o = jnp.split(xp + h @ w_h, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h

  zeros = jnp.zeros((x.shape[0], hidden), x.dtype)
  _, outputs = jax.lax.scan(step, (zeros, zeros), projected)
  return jnp.swapaxes(outputs, 0, 1)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--length", type=int, default=50)
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--embed-dim", type=int, default=300)
  parser.add_argument("--hidden", type=int, default=300)
  parser.add_argument("--repeats", type=int, default=7)
  args = parser.parse_args()

  x = jax.random.normal(jax.random.PRNGKey(0), (args.batch, args.length, args.embed_dim))
  params = nn.RNN(nn.OptimizedLSTMCell(args.hidden)).init(jax.random.PRNGKey(1), x)["params"]
  variants = {"flax nn.RNN(OptimizedLSTMCell)": flax_rnn, "hoisted input projection + lax.scan": hoisted_scan}
  np.testing.assert_allclose(hoisted_scan(params, x, args.hidden), flax_rnn(params, x, args.hidden),
                             atol=1e-5)   # the same function
  steps = {}
  for name, fn in variants.items():
    loss = lambda p, x, fn=fn: jnp.sum(jnp.tanh(fn(p, x, args.hidden)).max(1))
    steps[name] = jax.jit(jax.grad(loss, argnums=(0, 1)))
    jax.block_until_ready(steps[name](params, x))
  times = {name: [] for name in steps}
  for _ in range(args.repeats):                  # interleaved
    for name, step in steps.items():
      t0 = time.perf_counter()
      jax.block_until_ready(step(params, x))
      times[name].append(time.perf_counter() - t0)
  base = statistics.median(times[next(iter(times))])
  print(f"LSTM forward+backward, batch {args.batch}, length {args.length}, {args.embed_dim} -> {args.hidden}")
  print("| variant | ms (median) | speed-up |")
  print("|---|---|---|")
  for name, t in times.items():
    print(f"| {name} | {statistics.median(t) * 1e3:.1f} | {base / statistics.median(t):.2f}x |")


if __name__ == "__main__":
  main()
