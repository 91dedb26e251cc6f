"""Forward + backward time of the LSTM encoder as flat_jax builds it (flax nn.RNN over an
OptimizedLSTMCell: the input projection runs inside the scan, one small matmul per time step)
against the same function with the input projection hoisted out of the scan (one matmul for all
steps, as cuDNN and oneDNN do), and that with a hand-written backward pass whose weight gradients
are matmuls over all steps at once, all jitted. Evidence for (or against) a change to
flat_jax/models/lstm.py.

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
  projected = jnp.einsum("bld,dg->lbg", x, w_in) + bias  # (L, B, 4H)

  def step(carry, xp):
    c, h = carry
    i, f, g, o = jnp.split(xp + h @ w_h, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h

  zeros = jnp.zeros((x.shape[0], hidden), x.dtype)
  _, outputs = jax.lax.scan(step, (zeros, zeros), projected)
  return jnp.swapaxes(outputs, 0, 1)


@jax.custom_vjp
def _lstm_hand_vjp(x, w_in, w_h, bias):
  return _hand_forward(x, w_in, w_h, bias)[0]


def _hand_forward(x, w_in, w_h, bias):
  batch, length, dim = x.shape
  projected = (jnp.swapaxes(x, 0, 1).reshape(-1, dim) @ w_in).reshape(length, batch, -1) + bias

  def step(carry, xp):
    c, h = carry
    i, f, g, o = jnp.split(xp + h @ w_h, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c = f * c + i * g
    tanh_c = jnp.tanh(c)
    h = o * tanh_c
    return (c, h), (h, c, jnp.concatenate([i, f, g, o], -1), tanh_c)

  zeros = jnp.zeros((batch, w_h.shape[0]), x.dtype)
  _, (hs, cs, gates, tanh_cs) = jax.lax.scan(step, (zeros, zeros), projected)
  return jnp.swapaxes(hs, 0, 1), (x, w_in, w_h, hs, cs, gates, tanh_cs)


def _hand_backward(residuals, d_outputs):
  """Only dh_t @ W_h^T stays in the reverse scan; the weight and input gradients are three large
  matmuls over all steps afterwards (what cuDNN and oneDNN do)."""
  x, w_in, w_h, hs, cs, gates, tanh_cs = residuals
  zeros = jnp.zeros_like(hs[0])
  c_prev = jnp.concatenate([zeros[None], cs[:-1]], 0)

  def step(carry, inputs):
    dh_next, dc_next = carry
    dh_out, gate, tanh_c, c_before = inputs
    i, f, g, o = jnp.split(gate, 4, -1)
    dh = dh_out + dh_next
    dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
    dz = jnp.concatenate(
      [
        dc * g * i * (1 - i),
        dc * c_before * f * (1 - f),
        dc * i * (1 - g * g),
        dh * tanh_c * o * (1 - o),
      ],
      -1,
    )
    return (dz @ w_h.T, dc * f), dz

  _, dz = jax.lax.scan(
    step, (zeros, zeros), (jnp.swapaxes(d_outputs, 0, 1), gates, tanh_cs, c_prev), reverse=True
  )
  length, batch, gates_dim = dz.shape
  dz_flat = dz.reshape(-1, gates_dim)
  h_prev = jnp.concatenate([zeros[None], hs[:-1]], 0).reshape(-1, hs.shape[-1])
  x_flat = jnp.swapaxes(x, 0, 1).reshape(-1, x.shape[-1])
  dx = jnp.swapaxes((dz_flat @ w_in.T).reshape(length, batch, -1), 0, 1)
  return dx, x_flat.T @ dz_flat, h_prev.T @ dz_flat, dz_flat.sum(0)


_lstm_hand_vjp.defvjp(_hand_forward, _hand_backward)


def hand_vjp(params, x, hidden):
  """hoisted_scan's forward with a hand-written backward pass."""
  cell = params["cell"]
  w_in = jnp.concatenate([cell[f"i{g}"]["kernel"] for g in "ifgo"], 1)
  w_h = jnp.concatenate([cell[f"h{g}"]["kernel"] for g in "ifgo"], 1)
  bias = jnp.concatenate([cell[f"h{g}"]["bias"] for g in "ifgo"])
  return _lstm_hand_vjp(x, w_in, w_h, bias)


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
  variants = {
    "flax nn.RNN(OptimizedLSTMCell)": flax_rnn,
    "hoisted input projection + lax.scan": hoisted_scan,
    "hoisted + hand-written backward (custom_vjp)": hand_vjp,
  }
  np.testing.assert_allclose(
    hoisted_scan(params, x, args.hidden), flax_rnn(params, x, args.hidden), atol=1e-5
  )  # the same function
  loss = lambda fn: lambda p, x: jnp.sum(jnp.tanh(fn(p, x, args.hidden)).max(1))
  for a, b in zip(
    jax.tree.leaves(jax.grad(loss(hand_vjp), argnums=(0, 1))(params, x)),
    jax.tree.leaves(jax.grad(loss(flax_rnn), argnums=(0, 1))(params, x)),
  ):
    np.testing.assert_allclose(a, b, atol=1e-4)  # the same gradients
  steps = {}
  for name, fn in variants.items():
    loss = lambda p, x, fn=fn: jnp.sum(jnp.tanh(fn(p, x, args.hidden)).max(1))
    steps[name] = jax.jit(jax.grad(loss, argnums=(0, 1)))
    jax.block_until_ready(steps[name](params, x))
  times = {name: [] for name in steps}
  for _ in range(args.repeats):  # interleaved
    for name, step in steps.items():
      t0 = time.perf_counter()
      jax.block_until_ready(step(params, x))
      times[name].append(time.perf_counter() - t0)
  base = statistics.median(times[next(iter(times))])
  print(
    f"LSTM forward+backward, batch {args.batch}, length {args.length}, {args.embed_dim} -> {args.hidden}"
  )
  print("| variant | ms (median) | speed-up |")
  print("|---|---|---|")
  for name, t in times.items():
    print(f"| {name} | {statistics.median(t) * 1e3:.1f} | {base / statistics.median(t):.2f}x |")


if __name__ == "__main__":
  main()
