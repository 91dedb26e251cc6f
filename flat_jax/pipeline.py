"""One run in a workdir, the paper's procedure: train the base model on clean data; for each round,
attack the latest model on the training set and retrain with the mode's objective on the clean set
plus the new adversarial examples; then test accuracy and after-attack accuracy -> results.json.

Every stage leaves its state in the workdir (checkpoints/<stage>/, adversarial/round_<k>.jsonl,
attacks/test_<recipe>.jsonl, vocab.json, results.json), so re-running the same command resumes
where a killed run stopped.

The parts it calls: run_data (the dataset encoded as the model family reads it), run_stage (one
training stage), run_evaluation (the attacks and what is measured on their records), run_report
(DIR/report/), run_state (results.json and the saved config).
"""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib
import time

import jax
import numpy as np

from flat_jax import config as config_lib
from flat_jax import distributed
from flat_jax import run_evaluation, run_report, run_stage
from flat_jax import workdir as workdir_lib
from flat_jax.attacks import augment
from flat_jax.attacks.generate import summarize
from flat_jax.data.datasets import load_dataset
from flat_jax.models import registry
from flat_jax.run_data import RunData
from flat_jax.run_state import (
  RunError,
  finished_read_only,
  prepare_workdir,
  read_results,
  write_results,
)
from flat_jax.training.loop import accuracy
from flat_jax.training.step import make_mesh


# bins of the global-importance histogram: near 0, low, around 0.5, high, near 1
IMPORTANCE_BINS = (0.0, 0.1, 0.3, 0.45, 0.55, 0.7, 0.9, 1.0)


def _check_supported(config) -> None:
  """Settings that would fail later, after hours of training, refused at the start."""
  recipes = set(config.eval.attacks) | ({config.attack.recipe} if config.mode != "base" else set())
  needs_lm = sorted(r for r in recipes if r in ("bae", "clare"))
  if needs_lm and not config.attack.masked_lm:
    raise RunError(
      f"{' and '.join(needs_lm)} need a masked language model: set attack.masked_lm to a "
      f"Hugging Face masked-LM folder (none exists offline), or drop them from "
      f"eval.attacks / attack.recipe"
    )
  if config.train.continuous and config.train.schedule == "linear" and config.mode != "base":
    raise RunError(
      "train.continuous with train.schedule=linear: the schedule's step count carries "
      "over from the clean epochs, so the rounds would train at learning rate 0; use "
      "train.schedule=constant with the continuous schedule"
    )
  if "hotflip" in recipes and not registry.family(config.model.name).word_gradients:
    raise RunError(
      f"hotflip needs a word model (model.name=lstm or cnn): a word-piece model reads a "
      f"substitute as another number of pieces, where HotFlip's first-order estimate of "
      f"a flip is not defined; drop it from eval.attacks / attack.recipe for "
      f"{config.model.name}"
    )
  if config.model.from_scratch and config.model.scratch_hidden % config.model.scratch_heads:
    raise RunError(
      f"model.scratch_hidden={config.model.scratch_hidden} is not a multiple of "
      f"model.scratch_heads={config.model.scratch_heads}"
    )


def run(config, workdir) -> dict:
  config_lib.validate(config)
  if changed := config_lib.resolve_protocol(config):
    logging.info(
      "protocol %s: set %s",
      config.protocol,
      ", ".join(
        f"{k}={config[k.split('.')[0]][k.split('.')[1]] if '.' in k else config[k]}"
        for k in changed
      ),
    )
  _check_supported(config)
  pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
  # decided by the primary, taken by every process alike (the others would wait at a barrier the
  # primary never reaches); before the shared-workdir probe, which writes a file
  reason = workdir_lib.not_writable(workdir) if distributed.is_primary() else None
  if distributed.broadcast_float(1.0 if reason else 0.0):
    return finished_read_only(config, pathlib.Path(workdir), reason or "not writable by process 0")
  distributed.check_shared_workdir(workdir)
  # one writer per workdir: the primary holds the lock for the whole run, the others write through it
  with workdir_lib.exclusive(workdir) if distributed.is_primary() else contextlib.nullcontext():
    return _run(config, workdir)


def _run(config, workdir) -> dict:
  if config.stage in ("attack", "evaluate"):
    return evaluate_attacks(config, workdir)
  if config.stage == "report":
    results = (
      run_report.write_report(workdir) if distributed.is_primary() else read_results(workdir)
    )
    distributed.barrier("report written")
    return results
  workdir, finished = prepare_workdir(config, workdir)
  if finished is not None:
    if (
      finished.get("status") == "finished"
      and not (workdir / "report" / "index.html").exists()
      and distributed.is_primary()
    ):
      run_report.write_report(workdir)  # killed while the report was being written
      finished = read_results(workdir)
    distributed.barrier("finished run checked")
    logging.info(
      "%s: this run already finished (test accuracy %.2f); nothing to do",
      workdir,
      finished["standard_accuracy"],
    )
    if (
      finished.get("after_attack")
      and "attack_temperature" not in finished
      and config.eval.attack_temperature != 1.0
    ):
      logging.warning(
        "%s: its after-attack figures were measured at T = 1, before the evaluation "
        "attacks were calibrated; --config.stage=evaluate measures them again at the "
        "calibrated temperature (README, Attacks)",
        workdir,
      )
    return finished
  previous = read_results(workdir)
  timings = previous.get("timings_s", {})
  t0 = time.perf_counter()
  data = RunData(config)
  data.save(workdir)
  timings["data"] = time.perf_counter() - t0
  mesh = make_mesh()
  logging.info(
    "devices: %d x %s over %d process(es)",
    mesh.size,
    jax.devices()[0].platform,
    distributed.process_count(),
  )

  results = {
    "dataset": config.data.name,
    "model": config.model.name,
    "mode": config.mode,
    "status": "running",
    "rounds_done": 0,
    "seed": config.seed,
    "num_train": len(data.train),
    "num_dev": len(data.dev),
    "num_test": len(data.test),
    **data.family.describe(),
    "attack": {
      "recipe": config.attack.recipe,
      "keep": config.attack.keep,
      "num_examples": config.attack.num_examples,
    },
    **(
      {"embedding_adversary": config.embedding_adversary.to_dict()}
      if config.mode in config_lib.EMBEDDING_MODES
      else {}
    ),
    **(
      {
        "flat": {
          "beta": config.flat.beta,
          "gamma": config.flat.gamma,
          "entropy_reduction": config.flat.entropy_reduction,
          "importance_positions": config.flat.importance_positions,
        }
      }
      if config.mode == "flat"
      else {}
    ),
    "protocol": {
      "name": config.protocol,
      "loss_on_probs": config.train.loss_on_probs,
      "continuous": config.train.continuous,
      "attack_model_mode": config.attack.model_mode,
      "grow_vocab": config.attack.grow_vocab,
    },
    "rounds": [],
    "after_attack": previous.get("after_attack", {}),
    **(
      {"attack_temperature": previous["attack_temperature"]}
      if "attack_temperature" in previous
      else {}
    ),
    "interpretation": previous.get("interpretation", {}),
    "timings_s": timings,
  }
  write_results(workdir, results)

  continuous = config.train.continuous and config.mode != "base"
  # pgd/freelb need no attack: their first stage already trains adversarially, from scratch
  embedding_mode = config.mode in config_lib.EMBEDDING_MODES
  if continuous or embedding_mode:
    # the authors' schedule: the mode's model and objective from the first (clean) epoch
    first = run_stage.train_stage(
      config,
      workdir,
      data,
      mesh,
      stage=f"train_{config.mode}_round_0",
      mode=config.mode,
      train=data.train,
      epochs=config.train.epochs,
      init_params=None,
    )
    first_stage = f"train_{config.mode}_round_0"
  else:
    first = run_stage.train_stage(
      config,
      workdir,
      data,
      mesh,
      stage="train_base",
      mode="base",
      train=data.train,
      epochs=config.train.epochs,
      init_params=None,
    )
    first_stage = "train_base"
  timings[first_stage] = first.seconds
  results.update(
    base_dev_accuracy=first.dev_accuracy,
    dev_accuracy=first.dev_accuracy,
    best_epoch=first.best_epoch,
    model_stage=first_stage,
  )
  write_results(workdir, results)
  latest, latest_stage = first, first_stage
  chosen = (
    first  # the run's model: the last stage's best, or the best adversarial epoch (continuous)
  )
  round_epochs = config.train.round_epochs or config.train.epochs
  rounds = range(1, config.rounds + 1) if config.rounds or continuous or embedding_mode else [0]
  if config.mode != "base":
    for k in rounds:
      stage = f"train_{config.mode}_round_{k}"
      summary = {"round": k}
      if k:  # round 0 (rounds=0): the mode's objective on clean data only
        # continuous: the previous stage's last epoch is attacked and trained on
        attacked = f"{latest_stage}/latest" if continuous else latest_stage
        records = run_evaluation.attack_round(config, workdir, data, results, k, attacked)
        write_results(workdir, results)  # the attack's time, before a kill during training
        kept = augment.kept_records(records, config.attack.keep)
        grown = data.grow(config, augment.substitute_words(kept))
        data.save(workdir)
        train = augment.augmented_split(data.train, kept, data.text)
        summary.update(attacked_model=attacked, attack=summarize(records), kept=len(kept), **grown)
      else:
        train = data.train
      if continuous:
        latest = run_stage.train_stage(
          config,
          workdir,
          data,
          mesh,
          stage=stage,
          mode=config.mode,
          train=train,
          epochs=round_epochs,
          init_params=latest.final_state.params,
          init_state=latest.final_state,
        )
        # best dev among the adversarial epochs only (the first best on a tie, as the authors)
        if chosen is first or latest.dev_accuracy > chosen.dev_accuracy:
          chosen, chosen_stage = latest, stage
      else:
        latest = run_stage.train_stage(
          config,
          workdir,
          data,
          mesh,
          stage=stage,
          mode=config.mode,
          train=train,
          epochs=round_epochs,
          init_params=latest.params,
        )
        chosen, chosen_stage = latest, stage
      latest_stage = stage
      timings[stage] = latest.seconds
      summary.update(dev_accuracy=latest.dev_accuracy, best_epoch=latest.best_epoch)
      results["rounds"].append(summary)
      results.update(
        rounds_done=k,
        dev_accuracy=chosen.dev_accuracy,
        best_epoch=chosen.best_epoch,
        model_stage=chosen_stage,
      )
      write_results(workdir, results)
  latest, latest_stage = chosen, results["model_stage"]

  t0 = time.perf_counter()
  results["standard_accuracy"] = accuracy(
    latest.eval_step, latest.params, data.test, config.train.eval_batch_size, mesh, data.text.trim
  )
  timings["evaluate"] = time.perf_counter() - t0
  phi = data.family.vocabulary_phi(latest.model, latest.params) if config.mode == "flat" else None
  if phi is not None:  # word models: phi of a word piece depends on its position
    if distributed.is_primary():
      np.save(workdir / "importance.npy", phi)
    results["importance_histogram"] = {
      "edges": list(IMPORTANCE_BINS),
      "counts": np.histogram(phi, bins=IMPORTANCE_BINS)[0].tolist(),
    }
  if config.eval.dev_examples:
    run_evaluation.dev_robustness(config, workdir, data.dataset, results, latest_stage)
  results["status"] = "trained"
  write_results(workdir, results)
  logging.info(
    "%s %s %s: dev %.2f, test %.2f",
    config.data.name,
    config.model.name,
    config.mode,
    results["dev_accuracy"],
    results["standard_accuracy"],
  )
  if config.stage == "all":
    run_evaluation.after_attack(config, workdir, results, data.dataset, latest_stage)
    results["status"] = "finished"
    write_results(workdir, results)
    if distributed.is_primary():
      run_report.write_report(workdir)
    # the others wait here, not at JAX's shutdown, whose client gives up after 300 s
    distributed.barrier("report written")
  return results


def evaluate_attacks(config, workdir) -> dict:
  """After-attack figures of the workdir's trained model on the first eval.num_examples test
  examples, for every recipe in eval.attacks; records in DIR/attacks/test_<recipe>.jsonl."""
  workdir = pathlib.Path(workdir)
  results = read_results(workdir)
  if not results.get("model_stage") or "standard_accuracy" not in results:
    raise RunError(f"{workdir}: no trained model to attack; train first (stage=all or train)")
  trained_config = json.loads((workdir / "config.json").read_text())
  data_config = config.data.copy_and_resolve_references()
  for key in ("name", "path", "max_length", "min_freq", "dev_size", "train_limit", "test_limit"):
    data_config[key] = trained_config["data"][key]
  dataset = load_dataset(data_config, seed=trained_config["seed"])
  results.setdefault("after_attack", {})
  results.setdefault("timings_s", {})
  if config.eval.dev_examples:  # robustness on dev, e.g. to select among finished runs
    run_evaluation.dev_robustness(config, workdir, dataset, results, results["model_stage"])
  run_evaluation.after_attack(config, workdir, results, dataset, results["model_stage"])
  return results
