"""One run in a workdir, the paper's procedure: train the base model on clean data; for each round,
attack the latest model on the training set and retrain with the mode's objective on the clean set
plus the new adversarial examples; then test accuracy and after-attack accuracy -> results.json.

Every stage leaves its state in the workdir (checkpoints/<stage>/, adversarial/round_<k>.jsonl,
attacks/test_<recipe>.jsonl, vocab.json, results.json), so re-running the same command resumes
where a killed run stopped.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import pathlib
import time

import jax
import numpy as np

from flat_jax import config as config_lib
from flat_jax import distributed
from flat_jax import workdir as workdir_lib
from flat_jax.data.datasets import load_dataset
from flat_jax.data.batching import num_batches
from flat_jax.data.encoding import EncodedSplit
from flat_jax.data.text import clean_text, tokenize
from flat_jax.models import registry
from flat_jax.run_data import RunData
from flat_jax.run_state import (RunError, finished_read_only, prepare_workdir, read_results,
                                write_results)
from flat_jax.training import objectives
from flat_jax.training.embedding_adversary import EmbeddingAdversary
from flat_jax.training.checkpoints import StageCheckpoints, load_params
from flat_jax.training.loop import MetricsWriter, accuracy, fit
from flat_jax.training.state import TrainState, make_optimizer
from flat_jax.training.step import make_eval_step, make_mesh, make_train_step, model_apply_fn
from flat_jax.attacks import augment
from flat_jax.attacks.generate import (AttackJob, attack_examples, current_records, records_by_index,
                                      summarize)
from flat_jax.interpret import pairs as interpret_pairs
from flat_jax.interpret.consistency import topk_chance
from flat_jax.report.tables import load_runs, render


# bins of the global-importance histogram: near 0, low, around 0.5, high, near 1
IMPORTANCE_BINS = (0.0, 0.1, 0.3, 0.45, 0.55, 0.7, 0.9, 1.0)


def _check_supported(config) -> None:
  """Settings that would fail later, after hours of training, refused at the start."""
  recipes = set(config.eval.attacks) | ({config.attack.recipe} if config.mode != "base" else set())
  needs_lm = sorted(r for r in recipes if r in ("bae", "clare"))
  if needs_lm and not config.attack.masked_lm:
    raise RunError(f"{' and '.join(needs_lm)} need a masked language model: set attack.masked_lm to a "
                   f"Hugging Face masked-LM folder (none exists offline), or drop them from "
                   f"eval.attacks / attack.recipe")
  if config.train.continuous and config.train.schedule == "linear" and config.mode != "base":
    raise RunError("train.continuous with train.schedule=linear: the schedule's step count carries "
                   "over from the clean epochs, so the rounds would train at learning rate 0; use "
                   "train.schedule=constant with the continuous schedule")
  if "hotflip" in recipes and not registry.family(config.model.name).word_gradients:
    raise RunError(f"hotflip needs a word model (model.name=lstm or cnn): a word-piece model reads a "
                   f"substitute as another number of pieces, where HotFlip's first-order estimate of "
                   f"a flip is not defined; drop it from eval.attacks / attack.recipe for "
                   f"{config.model.name}")
  if config.model.from_scratch and config.model.scratch_hidden % config.model.scratch_heads:
    raise RunError(f"model.scratch_hidden={config.model.scratch_hidden} is not a multiple of "
                   f"model.scratch_heads={config.model.scratch_heads}")


@dataclasses.dataclass
class StageResult:
  model: object
  params: dict            # the best dev epoch's
  eval_step: object
  dev_accuracy: float
  best_epoch: int
  seconds: float
  final_state: object = None   # the last epoch's train state (host arrays)


def _carry_optimizer(state, previous) -> object:
  """`state` with the optimiser moments, step and random key of `previous` (the authors' schedule
  continues one run); a fresh optimiser when the parameters changed shape (a grown trainable
  embedding table), with a warning."""
  same = (jax.tree.structure(state.opt_state) == jax.tree.structure(previous.opt_state) and all(
      np.shape(a) == np.shape(b) for a, b in zip(jax.tree.leaves(state.opt_state),
                                                  jax.tree.leaves(previous.opt_state))))
  if not same:
    logging.warning("the optimiser state of the previous stage does not fit this one (parameter "
                    "shapes changed); its moments start afresh")
    return state
  return state.replace(opt_state=previous.opt_state, step=previous.step, rng=previous.rng)


def _train_stage(config, workdir, data: RunData, mesh, *, stage: str, mode: str, train: EncodedSplit,
                 epochs: int, init_params: dict | None, init_state=None) -> StageResult:
  """Trains one stage from `init_params` (the previous stage's best, or its last epoch's under the
  continuous schedule; None = fresh, or config.restore) with the objective of `mode`, keeping the
  best-dev checkpoint in checkpoints/<stage>/. `init_state`: continue that state's optimiser."""
  with_mask = mode == "flat"
  restore = load_params(config.restore) if config.restore and init_params is None else None
  model, params, table_size = data.family.build(config, data.dataset.num_classes, with_mask,
                                                init_params, restore, train.ids[:1])
  apply_fn = model_apply_fn(model)
  adversary = None
  if mode in config_lib.EMBEDDING_MODES:
    adversary = EmbeddingAdversary.from_config(mode, config.embedding_adversary)
  num_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  logging.info("%s: model %s%s, %d parameters (%d in the embedding table), %d training rows%s", stage,
               config.model.name, " with word mask" if with_mask else "", num_params,
               table_size, len(train), f", {adversary}" if adversary else "")

  train_config = config.train.copy_and_resolve_references()
  if mode == "flat" and config.flat.learning_rate:
    train_config.learning_rate = config.flat.learning_rate
  total_steps = None
  if config.train.schedule == "linear":   # over the real number of steps of this stage's set
    total_steps = epochs * num_batches(len(train), config.train.batch_size)
    if config.train.steps_limit:
      total_steps = epochs * min(config.train.steps_limit, num_batches(len(train), config.train.batch_size))
  tx = make_optimizer(train_config, params, freeze_embeddings=config.model.freeze_embeddings,
                      total_steps=total_steps)
  state = TrainState.create(apply_fn=apply_fn, params=params, tx=tx, seed=config.seed)
  if init_state is not None:
    state = _carry_optimizer(state, init_state)
  objective = objectives.make_objective(mode, config.flat.beta, config.flat.gamma,
                                        config.flat.entropy_reduction,
                                        loss_on_probs=config.train.loss_on_probs,
                                        importance_positions=config.flat.importance_positions)
  eval_step = make_eval_step(apply_fn, mesh)
  train_step = make_train_step(apply_fn, objective, mesh, grad_reduction=config.train.grad_reduction,
                               donate_state=config.train.donate_state, adversary=adversary,
                               embed_fn=lambda p, ids: model.apply({"params": p}, ids,
                                                                   method=model.embed_tokens))
  fitted = fit(state, train, data.dev, train_step=train_step,
               eval_step=eval_step, mesh=mesh, epochs=epochs, batch_size=config.train.batch_size,
               eval_batch_size=config.train.eval_batch_size, seed=config.seed,
               metrics=MetricsWriter(workdir / "metrics.jsonl" if distributed.is_primary() else None,
                                     tensorboard=config.tensorboard),
               stage=stage,
               steps_limit=config.train.steps_limit,
               checkpoints=StageCheckpoints(workdir / "checkpoints" / stage), trim=data.text.trim,
               pack_twins=config.train.pack_twins, select_epoch=config.train.select_epoch)
  return StageResult(model, jax.device_get(fitted.best_params), eval_step, fitted.best_dev_accuracy,
                     fitted.best_epoch, fitted.seconds, jax.device_get(fitted.state))


def _attack_job(config, workdir, recipe: str, stage: str, training_mode: bool = False,
                temperature: float = 1.0) -> AttackJob:
  return AttackJob(str(workdir), recipe, stage, config.seed, config.attack.synonym_vectors,
                   config.attack.masked_lm, config.attack.hownet_candidates, config.attack.query_budget,
                   training_mode=training_mode, synonym_min_cos=config.attack.synonym_min_cos,
                   temperature=temperature, budget=config.attack.budget)


CALIBRATED = "calibrated on dev"


def _attack_temperature(config, workdir, dataset, results, model_stage: str) -> float:
  """The temperature the evaluation attacks (dev and test) query the model at
  (eval.attack_temperature): fitted on dev once per model (0) (flat_jax.attacks.calibration), or the
  number given. Round attacks keep T = 1 (they are part of the training protocol)."""
  from flat_jax.attacks import calibration
  from flat_jax.training.artifacts import load_trained
  setting = config.eval.attack_temperature
  if setting:
    results["attack_temperature"] = {"value": float(setting), "source": "eval.attack_temperature"}
    return float(setting)
  saved = results.get("attack_temperature", {})
  if saved.get("source") == CALIBRATED and saved.get("stage") == model_stage:
    return saved["value"]
  fit = calibration.calibrate(load_trained(workdir, model_stage), dataset.dev.texts, dataset.dev.labels)
  # one value for every process (their attack shards are matched by it), the primary's
  fit["value"] = distributed.broadcast_float(fit["value"])
  results["attack_temperature"] = {"source": CALIBRATED, "stage": model_stage, **fit}
  write_results(workdir, results)
  logging.info("attack temperature %s (dev NLL %.4f at T=1, %.4f at T; %.0f%% of dev saturated at T=1)",
               fit["value"], fit["nll_at_1"], fit["nll"], 100 * fit["saturated"])
  return fit["value"]


def _timed_attack(results, key, path, indices, **kwargs) -> list[dict]:
  """attack_examples, adding the time spent to timings_s[key] (a resumed stage adds up)."""
  job = kwargs["job"]
  already = set(current_records(path, job))
  t0 = time.perf_counter()
  records = attack_examples(out_path=path, indices=indices, **kwargs)
  if not set(indices) <= already:
    results["timings_s"][key] = results["timings_s"].get(key, 0.0) + time.perf_counter() - t0
  return records


def _attack_round(config, workdir, data: RunData, results, k: int, model_stage: str) -> list[dict]:
  """Attacks the training set (or its seeded sample) with the model of `model_stage` (a stage, or
  a stage's latest/ epoch), in inference or training mode (attack.model_mode)."""
  indices = augment.attack_indices(len(data.train), config.attack.num_examples, config.seed, k)
  job = _attack_job(config, workdir, config.attack.recipe, model_stage,
                    training_mode=config.attack.model_mode == "training")
  return _timed_attack(results, f"attack_round_{k}", workdir / "adversarial" / f"round_{k}.jsonl",
                       indices, job=job,
                       texts=data.dataset.train.texts, labels=data.dataset.train.labels,
                       workers=config.attack.workers,
                       desc=f"round {k}: {config.attack.recipe} on train")


DEV_SAMPLE_SEED = 0


def dev_sample(num_dev: int, num_examples: int) -> list[int]:
  """The dev examples a run's robustness is selected on: one seeded sample (all of dev if smaller),
  the same for every run whatever its seed, so that runs are compared on the same examples."""
  order = np.random.RandomState(DEV_SAMPLE_SEED).permutation(num_dev)
  return sorted(order[:min(num_examples, num_dev)].tolist())


def _dev_robustness(config, workdir, dataset, results, model_stage: str) -> None:
  """After-attack accuracy of the run's model on a seeded sample of dev (eval.dev_examples), with
  the training recipe in inference mode -> results["dev_after_attack"]. Used to select settings."""
  indices = dev_sample(len(dataset.dev), config.eval.dev_examples)
  recipe = config.attack.recipe
  temperature = _attack_temperature(config, workdir, dataset, results, model_stage)
  records = _timed_attack(results, f"attack_dev_{recipe}", workdir / "attacks" / f"dev_{recipe}.jsonl",
                          indices, job=_attack_job(config, workdir, recipe, model_stage,
                                                   temperature=temperature),
                          texts=dataset.dev.texts, labels=dataset.dev.labels,
                          workers=config.attack.workers, desc=f"{recipe} on dev")
  results["dev_after_attack"] = {recipe: {**summarize(records), "temperature": temperature}}
  write_results(workdir, results)
  logging.info("after %s on %d dev examples: %s", recipe, len(indices), results["dev_after_attack"][recipe])


def _static_sets(config, workdir, results, dataset, model_stage: str) -> None:
  """Accuracy on each fixed adversarial set of eval.static_sets (results["static_sets"][name]),
  through the attack bridge: the texts read as the saved model reads them. A set already scored
  for this stage is kept."""
  if not config.eval.static_sets:
    return
  from flat_jax.attacks.bridge import PredictionBridge
  from flat_jax.data.static_sets import load_static_set
  from flat_jax.training.artifacts import load_trained
  scored = results.setdefault("static_sets", {})
  bridge = None
  for path in config.eval.static_sets:
    name = pathlib.Path(path).stem
    if scored.get(name, {}).get("stage") == model_stage and scored[name].get("path") == str(path):
      continue
    texts, labels = load_static_set(path, dataset.name, dataset.label_names)
    bridge = bridge or PredictionBridge.from_trained(load_trained(workdir, model_stage))
    predicted = np.asarray(bridge(texts)).argmax(-1)
    scored[name] = {"path": str(path), "stage": model_stage, "num_examples": len(texts),
                    "accuracy": float(100.0 * np.mean(predicted == np.asarray(labels)))}
    logging.info("static set %s: accuracy %.2f on %d texts", name, scored[name]["accuracy"], len(texts))
    write_results(workdir, results)


def _after_attack(config, workdir, results, dataset, model_stage: str) -> None:
  """After-attack figures on the first eval.num_examples test examples, per eval.attacks recipe;
  accuracy on the fixed adversarial sets of eval.static_sets."""
  _static_sets(config, workdir, results, dataset, model_stage)
  texts, labels = dataset.test.texts, dataset.test.labels
  count = min(config.eval.num_examples or len(texts), len(texts))
  temperature = (_attack_temperature(config, workdir, dataset, results, model_stage)
                 if config.eval.attacks else 1.0)
  for recipe in config.eval.attacks:
    records = _timed_attack(results, f"attack_test_{recipe}", workdir / "attacks" / f"test_{recipe}.jsonl",
                            range(count), job=_attack_job(config, workdir, recipe, model_stage,
                                                          temperature=temperature),
                            texts=texts, labels=labels, workers=config.attack.workers,
                            desc=f"{recipe} on test")
    results["after_attack"][recipe] = {**summarize(records), "temperature": temperature,
                                       **({"budget": config.attack.budget} if config.attack.budget else {})}
    write_results(workdir, results)
    logging.info("after %s: %s", recipe, results["after_attack"][recipe])
    key = _records_key(records, temperature, config.attack.budget)
    _attack_quality(results, recipe, records, key)
    write_results(workdir, results)
    _interpret(config, workdir, results, recipe, records, model_stage, key)
  # on the texts the attacks evaluate (the first eval.num_examples), at most faithfulness_examples
  _faithfulness(config, workdir, results, texts[:count], model_stage, temperature)


def _attributor(config, trained, method: str):
  from flat_jax.attacks.bridge import PredictionBridge
  from flat_jax.interpret.lime import word_attributor_lime
  if method == "ig":
    return interpret_pairs.word_attributor_ig(trained, steps=config.eval.ig_steps)
  return word_attributor_lime(PredictionBridge.from_trained(trained), trained.num_classes,
                              num_samples=config.eval.lime_samples,
                              max_words=trained.config.data.max_length, seed=config.seed)


def _faithfulness(config, workdir, results, texts, model_stage: str, temperature: float) -> None:
  """Comprehensiveness and sufficiency of each eval.interpret method on the first
  eval.faithfulness_examples test texts (results["faithfulness"][method]); kept for its stage.
  The probabilities are the evaluation attacks' (softmax(logits / T) at their temperature): a
  saturated model's raw probabilities barely move when words go, whatever the explanation, so
  models are compared at their calibrated confidence."""
  if not config.eval.faithfulness_examples or not len(texts):
    return
  from flat_jax.attacks.bridge import PredictionBridge
  from flat_jax.interpret.faithfulness import perturbation_curves
  from flat_jax.training.artifacts import load_trained
  chosen = list(texts[:config.eval.faithfulness_examples])
  done = results.setdefault("faithfulness", {})
  trained = None
  for method in config.eval.interpret:
    previous = done.get(method, {})
    if (previous.get("stage") == model_stage and previous.get("requested") == len(chosen)
        and previous.get("temperature") == temperature):
      continue
    trained = trained or load_trained(workdir, model_stage)
    t0 = time.perf_counter()
    curves = perturbation_curves(PredictionBridge.from_trained(trained, temperature=temperature), chosen,
                                 _attributor(config, trained, method)(chosen), seed=config.seed)
    done[method] = {**curves, "stage": model_stage, "requested": len(chosen), "temperature": temperature}
    results["timings_s"][f"faithfulness_{method}"] = time.perf_counter() - t0
    write_results(workdir, results)
    if curves.get("num_texts"):
      logging.info("%s faithfulness on %d test texts: comprehensiveness AOPC %.3f (random %.3f), "
                   "sufficiency %.3f (random %.3f)", method, curves["num_texts"],
                   curves["aopc_comprehensiveness"], curves["aopc_comprehensiveness_random"],
                   curves["aopc_sufficiency"], curves["aopc_sufficiency_random"])


def _records_key(records, temperature: float, budget: str) -> dict:
  """What a figure computed from attack records was computed from: a cached figure is reused only
  while this is unchanged (the records' temperature and budget, and how many there are)."""
  return {"temperature": temperature, "num_records": len(records), **({"budget": budget} if budget else {})}


def _same_records(done: dict | None, key: dict) -> bool:
  """An entry made before num_records / budget were kept counts for the full key's defaults."""
  return done is not None and all(done.get(k, {"temperature": 1.0, "budget": ""}.get(k, v)) == v
                                  for k, v in {**key, "budget": key.get("budget", "")}.items())


def _attack_quality(results, recipe: str, records, key: dict) -> None:
  """results["attack_quality"][recipe]: the adversarial examples' quality (attacks/quality.py),
  kept while the records it describes are (_records_key)."""
  from flat_jax.attacks import quality
  done = results.setdefault("attack_quality", {}).get(recipe)
  if _same_records(done, key):
    return
  t0 = time.perf_counter()
  results["attack_quality"][recipe] = {**quality.summarize(quality.per_example(records)), **key}
  results["timings_s"][f"quality_{recipe}"] = time.perf_counter() - t0
  summary = results["attack_quality"][recipe]
  logging.info("quality of %s's %d adversarial examples: similarity %s, synonyms %s, POS kept %s", recipe,
               summary["num_examples"], *(f"{summary[m]['mean']:.3f}" if summary[m].get("n") else "-"
                                          for m in ("similarity", "synonym_share", "pos_agreement")))


def _interpret(config, workdir, results, recipe: str, records, model_stage: str, key: dict) -> None:
  """Interpretation consistency on the recipe's original/adversarial test pairs, per eval.interpret
  method; a method already in results.json for these records (_records_key; entries without a
  temperature were made at 1) is not recomputed."""
  from flat_jax.training.artifacts import load_trained
  interpretation = results.setdefault("interpretation", {})
  trained = None
  for method in config.eval.interpret:
    if _same_records(interpretation.get(method, {}).get(recipe), key):
      continue
    trained = trained or load_trained(workdir, model_stage)
    t0 = time.perf_counter()
    attribute = _attributor(config, trained, method)
    if method == "ig":
      chosen = records
    else:
      candidates = interpret_pairs.counterpart_records(records)
      rng = np.random.RandomState(config.seed)
      take = sorted(rng.permutation(len(candidates))[:config.eval.lime_pairs])
      chosen = [candidates[i] for i in take]
    interpretation.setdefault(method, {})[recipe] = {
        **interpret_pairs.pair_consistency(attribute, chosen, desc=f"{method} consistency ({recipe})"),
        **key}
    results["timings_s"][f"{method}_{recipe}"] = time.perf_counter() - t0
    write_results(workdir, results)
    logging.info("%s consistency under %s: %s", method, recipe, interpretation[method][recipe])


def run(config, workdir) -> dict:
  config_lib.validate(config)
  if changed := config_lib.resolve_protocol(config):
    logging.info("protocol %s: set %s", config.protocol,
                 ", ".join(f"{k}={config[k.split('.')[0]][k.split('.')[1]] if '.' in k else config[k]}"
                           for k in changed))
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
    results = write_report(workdir) if distributed.is_primary() else read_results(workdir)
    distributed.barrier("report written")
    return results
  workdir, finished = prepare_workdir(config, workdir)
  if finished is not None:
    if (finished.get("status") == "finished" and not (workdir / "report" / "index.html").exists()
        and distributed.is_primary()):
      write_report(workdir)   # killed while the report was being written
      finished = read_results(workdir)
    distributed.barrier("finished run checked")
    logging.info("%s: this run already finished (test accuracy %.2f); nothing to do", workdir,
                 finished["standard_accuracy"])
    if (finished.get("after_attack") and "attack_temperature" not in finished
        and config.eval.attack_temperature != 1.0):
      logging.warning("%s: its after-attack figures were measured at T = 1, before the evaluation "
                      "attacks were calibrated; --config.stage=evaluate measures them again at the "
                      "calibrated temperature (README, Attacks)", workdir)
    return finished
  previous = read_results(workdir)
  timings = previous.get("timings_s", {})
  t0 = time.perf_counter()
  data = RunData(config)
  data.save(workdir)
  timings["data"] = time.perf_counter() - t0
  mesh = make_mesh()
  logging.info("devices: %d x %s over %d process(es)", mesh.size, jax.devices()[0].platform,
               distributed.process_count())

  results = {"dataset": config.data.name, "model": config.model.name, "mode": config.mode,
             "status": "running", "rounds_done": 0, "seed": config.seed,
             "num_train": len(data.train), "num_dev": len(data.dev), "num_test": len(data.test),
             **data.family.describe(),
             "attack": {"recipe": config.attack.recipe, "keep": config.attack.keep,
                        "num_examples": config.attack.num_examples},
             **({"embedding_adversary": config.embedding_adversary.to_dict()}
                if config.mode in config_lib.EMBEDDING_MODES else {}),
             **({"flat": {"beta": config.flat.beta, "gamma": config.flat.gamma,
                          "entropy_reduction": config.flat.entropy_reduction,
                          "importance_positions": config.flat.importance_positions}}
                if config.mode == "flat" else {}),
             "protocol": {"name": config.protocol, "loss_on_probs": config.train.loss_on_probs,
                          "continuous": config.train.continuous,
                          "attack_model_mode": config.attack.model_mode,
                          "grow_vocab": config.attack.grow_vocab},
             "rounds": [], "after_attack": previous.get("after_attack", {}),
             **({"attack_temperature": previous["attack_temperature"]}
                if "attack_temperature" in previous else {}),
             "interpretation": previous.get("interpretation", {}),
             "timings_s": timings}
  write_results(workdir, results)

  continuous = config.train.continuous and config.mode != "base"
  # pgd/freelb need no attack: their first stage already trains adversarially, from scratch
  embedding_mode = config.mode in config_lib.EMBEDDING_MODES
  if continuous or embedding_mode:
    # the authors' schedule: the mode's model and objective from the first (clean) epoch
    first = _train_stage(config, workdir, data, mesh, stage=f"train_{config.mode}_round_0",
                         mode=config.mode, train=data.train, epochs=config.train.epochs,
                         init_params=None)
    first_stage = f"train_{config.mode}_round_0"
  else:
    first = _train_stage(config, workdir, data, mesh, stage="train_base", mode="base",
                         train=data.train, epochs=config.train.epochs, init_params=None)
    first_stage = "train_base"
  timings[first_stage] = first.seconds
  results.update(base_dev_accuracy=first.dev_accuracy, dev_accuracy=first.dev_accuracy,
                 best_epoch=first.best_epoch, model_stage=first_stage)
  write_results(workdir, results)
  latest, latest_stage = first, first_stage
  chosen = first   # the run's model: the last stage's best, or the best adversarial epoch (continuous)
  round_epochs = config.train.round_epochs or config.train.epochs
  rounds = range(1, config.rounds + 1) if config.rounds or continuous or embedding_mode else [0]
  if config.mode != "base":
    for k in rounds:
      stage = f"train_{config.mode}_round_{k}"
      summary = {"round": k}
      if k:   # round 0 (rounds=0): the mode's objective on clean data only
        # continuous: the previous stage's last epoch is attacked and trained on
        attacked = f"{latest_stage}/latest" if continuous else latest_stage
        records = _attack_round(config, workdir, data, results, k, attacked)
        write_results(workdir, results)   # the attack's time, before a kill during training
        kept = augment.kept_records(records, config.attack.keep)
        grown = data.grow(config, augment.substitute_words(kept))
        data.save(workdir)
        train = augment.augmented_split(data.train, kept, data.text)
        summary.update(attacked_model=attacked, attack=summarize(records), kept=len(kept), **grown)
      else:
        train = data.train
      if continuous:
        latest = _train_stage(config, workdir, data, mesh, stage=stage, mode=config.mode,
                              train=train, epochs=round_epochs,
                              init_params=latest.final_state.params, init_state=latest.final_state)
        # best dev among the adversarial epochs only (the first best on a tie, as the authors)
        if chosen is first or latest.dev_accuracy > chosen.dev_accuracy:
          chosen, chosen_stage = latest, stage
      else:
        latest = _train_stage(config, workdir, data, mesh, stage=stage, mode=config.mode,
                              train=train, epochs=round_epochs, init_params=latest.params)
        chosen, chosen_stage = latest, stage
      latest_stage = stage
      timings[stage] = latest.seconds
      summary.update(dev_accuracy=latest.dev_accuracy, best_epoch=latest.best_epoch)
      results["rounds"].append(summary)
      results.update(rounds_done=k, dev_accuracy=chosen.dev_accuracy, best_epoch=chosen.best_epoch,
                     model_stage=chosen_stage)
      write_results(workdir, results)
  latest, latest_stage = chosen, results["model_stage"]

  t0 = time.perf_counter()
  results["standard_accuracy"] = accuracy(latest.eval_step, latest.params, data.test,
                                          config.train.eval_batch_size, mesh, data.text.trim)
  timings["evaluate"] = time.perf_counter() - t0
  phi = data.family.vocabulary_phi(latest.model, latest.params) if config.mode == "flat" else None
  if phi is not None:   # word models: phi of a word piece depends on its position
    if distributed.is_primary():
      np.save(workdir / "importance.npy", phi)
    results["importance_histogram"] = {"edges": list(IMPORTANCE_BINS),
                                       "counts": np.histogram(phi, bins=IMPORTANCE_BINS)[0].tolist()}
  if config.eval.dev_examples:
    _dev_robustness(config, workdir, data.dataset, results, latest_stage)
  results["status"] = "trained"
  write_results(workdir, results)
  logging.info("%s %s %s: dev %.2f, test %.2f", config.data.name, config.model.name, config.mode,
               results["dev_accuracy"], results["standard_accuracy"])
  if config.stage == "all":
    _after_attack(config, workdir, results, data.dataset, latest_stage)
    results["status"] = "finished"
    write_results(workdir, results)
    if distributed.is_primary():
      write_report(workdir)
    # the others wait here, not at JAX's shutdown, whose client gives up after 300 s
    distributed.barrier("report written")
  return results


def write_report(workdir) -> dict:
  """DIR/report/: tables.md (the paper's tables, the paper's figures beside ours), the plots there
  are data for (PNG) and index.html (tables, plots, IG-coloured original/adversarial pairs). For a
  FLAT run the global importance analysis (Table 9, Figure 5) also goes into results.json."""
  from flat_jax.interpret import importance as importance_lib
  from flat_jax.report import html, plots
  from flat_jax.training.artifacts import load_trained
  workdir = pathlib.Path(workdir)
  results = read_results(workdir)
  if not results:
    raise RunError(f"{workdir}: no results.json to report on; run the training first")
  report_dir = workdir / "report"
  report_dir.mkdir(exist_ok=True)
  text = render(load_runs([workdir]))
  (report_dir / "tables.md").write_text(text, encoding="utf-8")
  logging.info("report: %s\n%s", report_dir / "tables.md", text)
  analysis = None
  if (workdir / "importance.npy").exists() and results.get("model_stage"):
    analysis = importance_lib.analyze_run(workdir)
    results["importance"] = analysis.summary
    write_results(workdir, results)
  metrics = []
  if (workdir / "metrics.jsonl").exists():
    for line in (workdir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
      with contextlib.suppress(ValueError):
        metrics.append(json.loads(line))
  chance = {}   # what random rankings of the pairs' texts score in Figure 6
  max_length = json.loads((workdir / "config.json").read_text())["data"]["max_length"]
  for file in sorted((workdir / "attacks").glob("test_*.jsonl")):
    pairs = interpret_pairs.counterpart_records(records_by_index(file))
    chance[file.stem.removeprefix("test_")] = topk_chance(
        [min(len(tokenize(clean_text(r["original"]))), max_length) for r in pairs])
  images = plots.write_run_plots(report_dir, analysis=analysis, metrics=metrics, chance=chance,
                                 runs={plots.run_label(results): results})
  attribute = None
  if results.get("model_stage"):
    trained = load_trained(workdir, results["model_stage"])
    attribute = interpret_pairs.word_attributor_ig(trained, steps=trained.config.eval.ig_steps)
  page = html.write_page(workdir, attribute=attribute, images=images, analysis=analysis,
                         importance=analysis.summary if analysis else None)
  logging.info("report page: %s", page)
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
  if config.eval.dev_examples:   # robustness on dev, e.g. to select among finished runs
    _dev_robustness(config, workdir, dataset, results, results["model_stage"])
  _after_attack(config, workdir, results, dataset, results["model_stage"])
  return results
