"""One run in a workdir: data -> model -> training -> evaluation -> results.json.

Later stages (attack rounds, interpretation, report) plug in here; every stage leaves its state in
the workdir.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import time

import jax
import numpy as np

from flat_jax import config as config_lib
from flat_jax.data.datasets import load_dataset
from flat_jax.data.embeddings import load_embeddings
from flat_jax.data.vocab import Vocab
from flat_jax.models.classifier import build_word_classifier, with_embedding
from flat_jax.training import objectives
from flat_jax.training.checkpoints import StageCheckpoints, load_params, merge_params
from flat_jax.training.loop import EncodedSplit, MetricsWriter, accuracy, fit
from flat_jax.training.state import TrainState, make_optimizer
from flat_jax.training.step import make_eval_step, make_mesh, make_train_step


# bins of the global-importance histogram: near 0, low, around 0.5, high, near 1
IMPORTANCE_BINS = (0.0, 0.1, 0.3, 0.45, 0.55, 0.7, 0.9, 1.0)


class RunError(RuntimeError):
  pass


def read_results(workdir) -> dict:
  path = pathlib.Path(workdir) / "results.json"
  if not path.exists():
    return {}
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def write_results(workdir, results: dict) -> None:
  path = pathlib.Path(workdir) / "results.json"
  tmp = path.with_suffix(".json.tmp")
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(results, f, indent=2, sort_keys=False)
  os.replace(tmp, path)   # atomic: a killed run never leaves half a results.json


def _check_supported(config) -> None:
  if config.model.name in ("bert", "deberta"):
    raise RunError(f"model.name={config.model.name}: the transformer encoders are not built yet "
                   f"(issue: Flax BERT and DeBERTa encoders). Use lstm or cnn.")
  if config.stage == "report":
    raise RunError("stage=report is not built yet; use stage=all, train or attack.")
  if config.mode != "base":
    logging.warning("mode=%s: adversarial rounds are not built yet, so this trains the %s objective "
                    "on clean data only (no adversarial twins, L_imp inactive)", config.mode, config.mode)


def _comparable(config) -> dict:
  settings = json.loads(json.dumps(config.to_dict(), default=list))
  settings.pop("overwrite", None)
  return settings


def prepare_workdir(config, workdir) -> tuple[pathlib.Path, dict | None]:
  """Creates the workdir. Returns the finished results when the same config already finished
  there; refuses a different config over a finished run unless config.overwrite is set."""
  workdir = pathlib.Path(workdir)
  previous = read_results(workdir)
  if config.overwrite:
    shutil.rmtree(workdir / "checkpoints", ignore_errors=True)
    for name in ("results.json", "metrics.jsonl"):
      (workdir / name).unlink(missing_ok=True)
    previous = {}
  config_file = workdir / "config.json"
  if previous.get("status") == "finished" and not config.overwrite:
    same = config_file.exists() and json.loads(config_file.read_text()) == _comparable(config)
    if same:
      return workdir, previous
    raise RunError(f"{workdir} holds a finished run ({previous.get('dataset')} {previous.get('model')} "
                   f"{previous.get('mode')}) with a different config; pass --config.overwrite=True "
                   f"to replace it, or use another --workdir.")
  workdir.mkdir(parents=True, exist_ok=True)
  if config_file.exists() and json.loads(config_file.read_text()) != _comparable(config) and (
      workdir / "checkpoints").exists():
    raise RunError(f"{workdir} holds an unfinished run with a different config; re-run with the same "
                   f"config to resume it, or pass --config.overwrite=True to start over.")
  with open(config_file, "w", encoding="utf-8") as f:
    json.dump(_comparable(config), f, indent=2)
  return workdir, None


def run(config, workdir) -> dict:
  config_lib.validate(config)
  _check_supported(config)
  if config.stage in ("attack", "evaluate"):
    return evaluate_attacks(config, workdir)
  workdir, finished = prepare_workdir(config, workdir)
  if finished is not None:
    logging.info("%s: this run already finished (test accuracy %.2f); nothing to do", workdir,
                 finished["standard_accuracy"])
    return finished
  timings = {}
  t0 = time.perf_counter()
  dataset = load_dataset(config.data, seed=config.seed)
  vocab = Vocab.build(dataset.train.texts, min_freq=config.data.min_freq)
  vocab.save(workdir / "vocab.json")
  embeddings = load_embeddings(vocab, config.model.embeddings, config.model.embeddings_format,
                               seed=config.seed)
  max_length = config.data.max_length
  encode = lambda split: EncodedSplit(vocab.encode_batch(split.texts, max_length)[0], split.labels)
  train, dev, test = encode(dataset.train), encode(dataset.dev), encode(dataset.test)
  timings["data"] = time.perf_counter() - t0

  with_mask = config.mode == "flat"
  model = build_word_classifier(config.model, len(vocab), dataset.num_classes,
                                embeddings.matrix.shape[1], with_mask=with_mask)
  init_rng = jax.random.PRNGKey(config.seed)
  params = model.init(init_rng, train.ids[:1], deterministic=True)["params"]
  params = with_embedding(params, embeddings.matrix)
  if config.restore:
    params = merge_params(params, load_params(config.restore), source=config.restore)
  num_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  logging.info("model %s%s: %d parameters (%d in the embedding table)", config.model.name,
               " with word mask" if with_mask else "", num_params, embeddings.matrix.size)

  apply_fn = lambda p, ids, deterministic, rngs: model.apply(
      {"params": p}, ids, deterministic=deterministic, rngs=rngs)
  train_config = config.train
  if config.mode == "flat" and config.flat.learning_rate:
    train_config = config.train.copy_and_resolve_references()
    train_config.learning_rate = config.flat.learning_rate
  tx = make_optimizer(train_config, params, freeze_embeddings=config.model.freeze_embeddings)
  state = TrainState.create(apply_fn=apply_fn, params=params, tx=tx, seed=config.seed)
  mesh = make_mesh()
  objective = objectives.make_objective(config.mode, config.flat.beta, config.flat.gamma)
  train_step = make_train_step(apply_fn, objective, mesh)
  eval_step = make_eval_step(apply_fn, mesh)
  logging.info("devices: %d x %s", mesh.size, jax.devices()[0].platform)
  stage = f"train_{config.mode}"

  results = {"dataset": config.data.name, "model": config.model.name, "mode": config.mode,
             "status": "running", "rounds_done": 0, "seed": config.seed,
             "num_train": len(train), "num_dev": len(dev), "num_test": len(test),
             "embeddings": {"source": embeddings.source, "dim": int(embeddings.matrix.shape[1]),
                            "coverage": round(embeddings.coverage, 4)},
             "after_attack": {}, "interpretation": {}, "timings_s": timings}
  write_results(workdir, results)

  fitted = fit(state, train, dev, train_step=train_step, eval_step=eval_step, mesh=mesh,
               epochs=config.train.epochs, batch_size=config.train.batch_size,
               eval_batch_size=config.train.eval_batch_size, seed=config.seed,
               metrics=MetricsWriter(workdir / "metrics.jsonl"), stage=stage,
               steps_limit=config.train.steps_limit,
               checkpoints=StageCheckpoints(workdir / "checkpoints" / stage))
  timings[stage] = fitted.seconds
  t0 = time.perf_counter()
  test_acc = accuracy(eval_step, fitted.best_params, test, config.train.eval_batch_size, mesh)
  timings["evaluate"] = time.perf_counter() - t0
  results.update(dev_accuracy=fitted.best_dev_accuracy, best_epoch=fitted.best_epoch,
                 standard_accuracy=test_acc, model_stage=stage, status="finished")
  if with_mask:
    phi = np.asarray(jax.device_get(model.apply({"params": fitted.best_params},
                                                np.arange(2, len(vocab))[None], method=model.importance)))[0]
    np.save(workdir / "importance.npy", phi)
    results["importance_histogram"] = {"edges": list(IMPORTANCE_BINS),
                                       "counts": np.histogram(phi, bins=IMPORTANCE_BINS)[0].tolist()}
  write_results(workdir, results)
  logging.info("%s %s %s: dev %.2f (epoch %d), test %.2f", config.data.name, config.model.name,
               config.mode, fitted.best_dev_accuracy, fitted.best_epoch, test_acc)
  return results


def evaluate_attacks(config, workdir) -> dict:
  """After-attack figures of the workdir's trained model on the first eval.num_examples test
  examples, for every recipe in eval.attacks; records in DIR/attacks/test_<recipe>.jsonl."""
  from flat_jax.attacks.generate import AttackJob, attack_examples, summarize
  workdir = pathlib.Path(workdir)
  results = read_results(workdir)
  if not results.get("model_stage"):
    raise RunError(f"{workdir}: no trained model to attack; train first (stage=all or train)")
  trained_config = json.loads((workdir / "config.json").read_text())
  data_config = config.data.copy_and_resolve_references()
  for key in ("name", "path", "max_length", "min_freq", "dev_size"):
    data_config[key] = trained_config["data"][key]
  dataset = load_dataset(data_config, seed=trained_config["seed"])
  count = min(config.eval.num_examples or len(dataset.test), len(dataset.test))
  for recipe in config.eval.attacks:
    t0 = time.perf_counter()
    job = AttackJob(str(workdir), recipe, results["model_stage"], config.seed,
                    config.attack.synonym_vectors, config.attack.masked_lm,
                    config.attack.hownet_candidates, config.attack.query_budget)
    records = attack_examples(job, dataset.test.texts, dataset.test.labels,
                              workdir / "attacks" / f"test_{recipe}.jsonl", workers=config.attack.workers,
                              indices=range(count), desc=f"{recipe} on test")
    results.setdefault("after_attack", {})[recipe] = summarize(records)
    results.setdefault("timings_s", {})[f"attack_test_{recipe}"] = time.perf_counter() - t0
    write_results(workdir, results)
    logging.info("%s after %s: %s", workdir, recipe, results["after_attack"][recipe])
  return results
