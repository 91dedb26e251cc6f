"""Examples per second of one training step: flat_jax's jitted data-parallel step against the
PyTorch reference of the authors' design (benchmarks/reference_torch.py, same weights, same loss),
with peak memory and a roofline of the JAX step.

  .venv/bin/python benchmarks/train_step.py [--models cnn,lstm,bert] [--modes base,flat]
      [--shapes sst2,imdb] [--repeats 7] [--steps 5] [--device cpu|gpu] [--no-memory]

Shapes are the paper's: SST-2 length 50, IMDB length 250; batch 64 for CNN/LSTM and 8 for BERT
(MiniLM-size: 6 layers, hidden 384) as the authors trained. An example is one training row as the
pipeline builds it: in mode flat an original and its adversarial twin (both forwarded; CE on both,
mask entropy on both, L_imp over the replaced words), in mode base the original alone. Rows are real
texts of the dataset (ids from its own training vocabulary; BERT gets them as word pieces of a
random 30522-piece vocabulary), twins have ~15% of their words replaced.

Both sides: the optimiser of the config presets (Adam for CNN/LSTM with frozen embeddings; AdamW,
clip 10, linear decay for BERT), dropout and mask sampling on. torch gets as many threads as JAX's
CPU client uses. Timing: warm-up steps first (compilation), then `repeats` rounds of `steps` steps
per side, the sides interleaved (A B, then B A, ...); the median round counts.

Memory: each side runs alone in a fresh subprocess (the rows are handed over in a file); the
figure is the peak resident set (VmHWM, its peak reset once the models are built) minus the
resident set at that moment, over compilation (JAX), warm-up and the timed steps: optimiser state,
gradients, activations, allocator caches and, for JAX, the compiler's working memory and the
compiled program. Both models' weights are resident before the window opens (build_pair makes
both) and are not counted. On a GPU the JAX figure is the device's peak bytes in use instead.

Roofline: the FLOPs of the compiled step from XLA's cost analysis (which counts a loop body once:
the LSTM's scan steps are added analytically), the FLOP/s the timed step achieves, and the
fraction of the machine's float32 matmul peak measured here (a large jnp.dot).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_torch as ref  # noqa: E402

LENGTHS = {"sst2": 50, "imdb": 250}
BATCH_SIZES = {"cnn": 64, "lstm": 64, "bert": 8}
BERT_VOCAB, BERT_CLS, BERT_SEP, BERT_FIRST_WORD = 30522, 101, 102, 1000
ADV_KEYS = ("adv_ids", "has_adv", "replaced")


# ---- rows ----


def real_rows(dataset: str, model: str, batch_size: int, seed: int = 0) -> tuple[dict, int]:
  """One batch of training rows with adversarial twins, and the size of the embedding table."""
  from flat_jax.config import preset
  from flat_jax.data.datasets import load_dataset
  from flat_jax.data.vocab import Vocab

  config = preset(dataset, "cnn").data
  split = load_dataset(config, seed=1111).train
  vocab = Vocab.build(split.texts, min_freq=config.min_freq)
  rng = np.random.default_rng(seed)
  chosen = rng.choice(len(split.texts), batch_size, replace=False)
  length = LENGTHS[dataset]
  word_ids, _ = vocab.encode_batch(
    [split.texts[i] for i in chosen], length - 2 if model == "bert" else length
  )
  adv_ids = word_ids.copy()
  for row in range(batch_size):
    real = np.flatnonzero(word_ids[row])
    swap = rng.choice(real, max(1, len(real) * 15 // 100), replace=False) if len(real) else []
    adv_ids[row, swap] = rng.integers(2, len(vocab), len(swap))
  vocab_size = len(vocab)
  if model == "bert":
    word_ids, adv_ids, vocab_size = (
      as_pieces(word_ids, length),
      as_pieces(adv_ids, length),
      BERT_VOCAB,
    )
  rows = {
    "ids": word_ids,
    "adv_ids": adv_ids,
    "has_adv": np.ones(batch_size, bool),
    "replaced": (word_ids != adv_ids) & (word_ids != 0) & (adv_ids != 0),
    "label": np.asarray(split.labels)[chosen].astype(np.int32),
    "weight": np.ones(batch_size, np.float32),
    "index": np.arange(batch_size, dtype=np.int32),
  }
  return rows, vocab_size


def as_pieces(word_ids: np.ndarray, length: int) -> np.ndarray:
  """[CLS] words [SEP] [PAD]... with word ids moved above BERT's special pieces."""
  out = np.zeros((len(word_ids), length), np.int32)
  for row, ids in enumerate(word_ids):
    words = BERT_FIRST_WORD + ids[ids != 0] % (BERT_VOCAB - BERT_FIRST_WORD)
    out[row, : len(words) + 2] = [BERT_CLS, *words, BERT_SEP]
  return out


def for_mode(rows: dict, mode: str) -> dict:
  return rows if mode == "flat" else {k: v for k, v in rows.items() if k not in ADV_KEYS}


def train_config(model: str, mode: str):
  from flat_jax.config import preset

  config = preset("sst2", model)
  train = config.train.copy_and_resolve_references()
  if mode == "flat" and config.flat.learning_rate:
    train.learning_rate = config.flat.learning_rate
  return config, train


# ---- the two steps ----


def jax_step(pair, mode: str, rows: dict, devices, total_steps: int = 10_000, donate: bool = False):
  """(compiled step, state, device batch) of flat_jax's own train step; donate=True as the pipeline
  runs it (`train.donate_state`): the state's buffers reused for the new state."""
  import jax
  from jax.sharding import NamedSharding, PartitionSpec as P
  from flat_jax.training import objectives
  from flat_jax.training.state import TrainState, make_optimizer
  from flat_jax.training.step import make_mesh, make_train_step, shard_batch

  config, train = train_config(pair.name, mode)
  mesh = make_mesh(devices)
  tx = make_optimizer(
    train,
    pair.params,
    freeze_embeddings=pair.name != "bert",
    total_steps=total_steps if train.schedule == "linear" else None,
  )
  state = TrainState.create(apply_fn=pair.apply_fn, params=pair.params, tx=tx, seed=0)
  state = jax.device_put(state, NamedSharding(mesh, P()))  # replicated on the chosen devices
  step = make_train_step(
    pair.apply_fn,
    objectives.make_objective(mode, config.flat.beta, config.flat.gamma),
    mesh,
    donate_state=donate,
  )
  batch = shard_batch(rows, mesh)
  return step.lower(state, batch).compile(), state, batch


def torch_step(pair, mode: str, rows: dict, total_steps: int = 10_000):
  """A step function of the PyTorch reference: forward, loss, backward, (clip,) optimiser."""
  import torch

  config, train = train_config(pair.name, mode)
  model = pair.torch_model.train()
  params = [p for p in model.parameters() if p.requires_grad]
  if train.optimizer == "adamw":
    opt = torch.optim.AdamW(
      params, lr=train.learning_rate, eps=1e-8, weight_decay=train.weight_decay
    )
  else:
    opt = torch.optim.Adam(params, lr=train.learning_rate)
  decay = (
    (lambda s: max(0.0, 1.0 - s / total_steps)) if train.schedule == "linear" else (lambda s: 1.0)
  )
  schedule = torch.optim.lr_scheduler.LambdaLR(opt, decay)
  batch = ref.torch_batch(rows)

  def step():
    opt.zero_grad(set_to_none=True)
    loss = ref.objective_loss(
      mode, ref.row_outputs(model, batch), batch, config.flat.beta, config.flat.gamma
    )
    loss.backward()
    if train.grad_clip:
      torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
    opt.step()
    schedule.step()
    return loss

  return step


def build_pair(model: str, mode: str, vocab_size: int, embed_dim: int):
  return ref.build_pair(model, mode, vocab_size=vocab_size, embed_dim=embed_dim)


def jax_devices(kind: str):
  import jax

  if kind == "gpu":
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if gpus:
      return gpus
    print("no GPU visible to JAX: the JAX side runs on the CPU", file=sys.stderr)
  return jax.devices("cpu")


# ---- measurement ----


def matmul_peak(devices, repeats: int = 7) -> float:
  """FLOP/s of a large float32 matmul on the device, default precision (what the model gets)."""
  import jax
  import jax.numpy as jnp

  n = 8192 if devices[0].platform == "gpu" else 2048
  a = jax.device_put(jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32), devices[0])
  dot = jax.jit(jnp.dot)
  dot(a, a).block_until_ready()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    dot(a, a).block_until_ready()
    times.append(time.perf_counter() - t0)
  return 2 * n**3 / statistics.median(times)


def xla_flops(compiled) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis.get("flops", float("nan")))


def scan_flops_left_out(pair, rows: dict, mode: str) -> float:
  """XLA's cost analysis counts a while loop's body once, not once per iteration, so the LSTM's
  scans (forward and backward) lack L - 1 steps of the cell: their matmul FLOPs, counted here.
  Forward per text and step: x W_i and h W_h, 2 (D + H) 4H. Backward: dW_i, dW_h and dh, plus dx
  when the word mask upstream needs it (mode flat; the frozen embeddings need none)."""
  if pair.name != "lstm":
    return 0.0
  (cell,) = pair.params["encoder"].values()
  embed_dim, hidden = cell["ii"]["kernel"].shape[0], cell["hi"]["kernel"].shape[0]
  texts, length = rows["ids"].shape[0] * (2 if mode == "flat" else 1), rows["ids"].shape[1]
  forward = 2 * (embed_dim + hidden) * 4 * hidden
  backward = 2 * (embed_dim + 2 * hidden + (embed_dim if mode == "flat" else 0)) * 4 * hidden
  return float((length - 1) * texts * (forward + backward))


def timed_rounds(sides: dict, steps: int, repeats: int, warmup: int = 2) -> dict[str, float]:
  """Median seconds per step of each side; rounds interleaved, the order flipped every round."""
  for run in sides.values():
    for _ in range(warmup):
      run(1)
  times = {name: [] for name in sides}
  names = list(sides)
  for r in range(repeats):
    for name in names if r % 2 == 0 else names[::-1]:
      t0 = time.perf_counter()
      sides[name](steps)
      times[name].append((time.perf_counter() - t0) / steps)
  return {name: statistics.median(t) for name, t in times.items()}


def jax_runner(compiled, state, batch):
  import jax

  holder = {"state": state}

  def run(steps):
    for _ in range(steps):
      holder["state"], metrics = compiled(holder["state"], batch)
    jax.block_until_ready((holder["state"], metrics))

  return run


def torch_runner(step):
  def run(steps):
    for _ in range(steps):
      step()

  return run


def _proc_status_bytes(field: str) -> int | None:
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith(field + ":"):
          return int(line.split()[1]) * 1024
  except OSError:
    return None
  return None


def start_peak_window() -> int:
  """Resets this process's peak RSS to its current RSS (Linux: clear_refs 5) and returns that RSS.
  /proc's VmHWM and not getrusage's ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a
  probe started by a big parent would report the parent's peak."""
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
  except OSError:
    pass
  current = _proc_status_bytes("VmRSS")
  return (
    current if current is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  )


def peak_rss_bytes() -> int:
  peak = _proc_status_bytes("VmHWM")
  return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def probe_memory(args) -> None:
  """Subprocess body: one side alone, prints {"bytes": peak growth, "what": ...} as JSON. The window
  opens after imports, JAX's client start and the model build (both sides' weights resident, as
  build_pair makes them), so it holds what the training step itself costs."""
  import torch

  torch.set_num_threads(args.threads)
  data = dict(np.load(args.probe_rows))
  vocab_size = int(data.pop("_vocab_size"))
  rows = for_mode(data, args.modes)
  devices = jax_devices(args.device)
  pair = build_pair(args.models, args.modes, vocab_size, args.embed_dim)
  base = start_peak_window()
  if args.probe == "jax":
    run = jax_runner(*jax_step(pair, args.modes, rows, devices, donate=args.donate))
  else:
    run = torch_runner(torch_step(pair, args.modes, rows))
  run(2 + args.steps)
  if args.probe == "jax" and devices[0].platform == "gpu":
    stats = devices[0].memory_stats() or {}
    print(json.dumps({"bytes": stats.get("peak_bytes_in_use", 0), "what": "GPU peak bytes in use"}))
  else:
    print(json.dumps({"bytes": peak_rss_bytes() - base, "what": "peak RSS growth"}))


def measure_memory(side: str, model: str, mode: str, rows_file: str, args) -> dict:
  cmd = [
    sys.executable,
    os.path.abspath(__file__),
    "--probe",
    side,
    "--probe-rows",
    rows_file,
    "--models",
    model,
    "--modes",
    mode,
    "--steps",
    str(args.steps),
    "--device",
    args.device,
    "--threads",
    str(args.threads),
    "--embed-dim",
    str(args.embed_dim),
    "--prng",
    args.prng,
    "--donate" if args.donate else "--no-donate",
  ]
  done = subprocess.run(cmd, capture_output=True, text=True)
  if done.returncode != 0:
    raise RuntimeError(f"memory probe {side} {model} {mode} failed:\n{done.stderr[-2000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the table ----


def mib(n: float) -> str:
  return f"{n / 2**20:.0f}"


def run_case(model, mode, shape, rows, vocab_size, devices, args, rows_file) -> dict:
  pair = build_pair(model, mode, vocab_size, args.embed_dim)
  compiled, state, batch = jax_step(pair, mode, for_mode(rows, mode), devices, donate=args.donate)
  flops = xla_flops(compiled) + scan_flops_left_out(pair, rows, mode)
  sides = {
    "jax": jax_runner(compiled, state, batch),
    "torch": torch_runner(torch_step(pair, mode, for_mode(rows, mode))),
  }
  seconds = timed_rounds(sides, args.steps, args.repeats)
  peak = matmul_peak(devices)  # right after the timing: the same machine state as the step saw
  batch_size = len(rows["label"])
  result = {
    "model": model,
    "mode": mode,
    "shape": shape,
    "length": rows["ids"].shape[1],
    "batch": batch_size,
    "jax_eps": batch_size / seconds["jax"],
    "torch_eps": batch_size / seconds["torch"],
    "flops": flops,
    "achieved": flops / seconds["jax"],
    "peak": peak,
  }
  if args.memory:
    for side in ("jax", "torch"):
      result[f"{side}_mem"] = measure_memory(side, model, mode, rows_file, args)
  return result


def setup_line(args, devices) -> str:
  import jax
  import torch

  knobs = ", ".join(
    k for k, on in (("donated state", args.donate), (f"PRNG {args.prng}", args.prng)) if on
  )
  return (
    f"JAX {jax.__version__} on {devices[0].platform} ({len(devices)} device(s))"
    f"{' [' + knobs + ']' if knobs else ''}; torch {torch.__version__} on CPU, {args.threads} "
    f"thread(s); median of {args.repeats} rounds of {args.steps} step(s) after warm-up, interleaved"
  )


def print_tables(results, setup: str, memory: bool) -> None:
  print(f"\n{setup}")
  head = "| model | mode | shape (L x B) | flat_jax ex/s | PyTorch ex/s | ratio |"
  rule = "|---|---|---|---|---|---|"
  if memory:
    what = results[0]["jax_mem"]["what"]
    head += f" flat_jax mem MiB ({what}) | PyTorch mem MiB (peak RSS growth) |"
    rule += "---|---|"
  print(head)
  print(rule)
  for r in results:
    line = (
      f"| {r['model']} | {r['mode']} | {r['shape']} ({r['length']} x {r['batch']}) | "
      f"{r['jax_eps']:.1f} | {r['torch_eps']:.1f} | {r['jax_eps'] / r['torch_eps']:.2f}x |"
    )
    if memory:
      line += f" {mib(r['jax_mem']['bytes'])} | {mib(r['torch_mem']['bytes'])} |"
    print(line)
  print(
    "\nRoofline of the flat_jax step. GFLOP/step: XLA's cost analysis of the compiled step (for the "
    "LSTM plus the L - 1 scan steps it counts once); peak: a float32 matmul measured after each case"
  )
  print(
    "| model | mode | shape | GFLOP/step | achieved GFLOP/s | matmul peak GFLOP/s | fraction of peak |"
  )
  print("|---|---|---|---|---|---|---|")
  for r in results:
    print(
      f"| {r['model']} | {r['mode']} | {r['shape']} | {r['flops'] / 1e9:.2f} | "
      f"{r['achieved'] / 1e9:.1f} | {r['peak'] / 1e9:.1f} | {r['achieved'] / r['peak']:.1%} |"
    )


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", default="cnn,lstm,bert")
  parser.add_argument("--modes", default="base,flat")
  parser.add_argument("--shapes", default="sst2,imdb")
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--steps", type=int, default=5, help="steps per timed round")
  parser.add_argument(
    "--device", default="cpu", choices=("cpu", "gpu"), help="where the JAX side runs"
  )
  parser.add_argument(
    "--embed-dim", type=int, default=300, help="word vectors of CNN/LSTM (paper: 300)"
  )
  parser.add_argument(
    "--threads", type=int, default=0, help="torch threads; 0 = JAX's (every core)"
  )
  parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
  parser.add_argument("--json", default="", help="also write the results here (after every case)")
  parser.add_argument("--render", default="", help="only print the tables of a --json file")
  # experiments on the JAX side (defaults: flat_jax as it is)
  parser.add_argument(
    "--donate",
    action=argparse.BooleanOptionalAction,
    default=True,
    help="donate the train state's buffers to the step, as the pipeline does (train.donate_state)",
  )
  parser.add_argument(
    "--prng", default="", help="jax_default_prng_impl, e.g. rbg (default: JAX's threefry)"
  )
  parser.add_argument("--probe", choices=("jax", "torch"), help=argparse.SUPPRESS)
  parser.add_argument("--probe-rows", help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  args.threads = args.threads or os.cpu_count()  # XLA's CPU client uses every core
  if args.prng:
    import jax

    jax.config.update("jax_default_prng_impl", args.prng)
  if args.probe:
    return probe_memory(args)
  if args.render:
    with open(args.render) as f:
      saved = json.load(f)
    return print_tables(
      saved["results"], saved["setup"], all("jax_mem" in r for r in saved["results"])
    )
  import torch

  torch.set_num_threads(args.threads)
  devices = jax_devices(args.device)
  results = []
  with tempfile.TemporaryDirectory() as tmp:
    for shape in args.shapes.split(","):
      for model in args.models.split(","):
        rows, vocab_size = real_rows(shape, model, BATCH_SIZES[model])
        rows_file = os.path.join(tmp, f"{shape}_{model}.npz")
        np.savez(rows_file, _vocab_size=vocab_size, **rows)
        for mode in args.modes.split(","):
          r = run_case(model, mode, shape, rows, vocab_size, devices, args, rows_file)
          print(
            f"{model} {mode} {shape}: jax {r['jax_eps']:.1f} ex/s, torch {r['torch_eps']:.1f} ex/s",
            file=sys.stderr,
            flush=True,
          )
          results.append(r)
          if args.json:  # after every case: a long run stopped early keeps what it measured
            with open(args.json, "w") as f:
              json.dump({"setup": setup_line(args, devices), "results": results}, f, indent=2)
  print_tables(results, setup_line(args, devices), args.memory)


if __name__ == "__main__":
  main()
