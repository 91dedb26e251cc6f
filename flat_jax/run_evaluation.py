"""What a run measures with attacks: the training rounds' attack on the training set, and the
evaluation of a trained model (after-attack accuracy on test and on a dev sample at a temperature
calibrated on dev, the fixed adversarial sets, the adversarial examples' quality, interpretation
consistency on the original/adversarial pairs, faithfulness). Each result goes into results.json as
soon as it exists; records and figures already there for the same model, temperature and budget are
reused, so a killed evaluation resumes.
"""

from __future__ import annotations

import logging
import pathlib
import time

import numpy as np

from flat_jax import distributed
from flat_jax.attacks import augment
from flat_jax.attacks.generate import AttackJob, attack_examples, current_records, summarize
from flat_jax.interpret import pairs as interpret_pairs
from flat_jax.run_data import RunData
from flat_jax.run_state import write_results


def attack_job(
  config, workdir, recipe: str, stage: str, training_mode: bool = False, temperature: float = 1.0
) -> AttackJob:
  return AttackJob(
    str(workdir),
    recipe,
    stage,
    config.seed,
    config.attack.synonym_vectors,
    config.attack.masked_lm,
    config.attack.hownet_candidates,
    config.attack.query_budget,
    training_mode=training_mode,
    synonym_min_cos=config.attack.synonym_min_cos,
    temperature=temperature,
    budget=config.attack.budget,
    search=config.attack.search,
    lockstep_examples=config.attack.lockstep_examples,
    sentence_encoder=config.attack.sentence_encoder,
  )


CALIBRATED = "calibrated on dev"


def attack_temperature(config, workdir, dataset, results, model_stage: str) -> float:
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
  fit = calibration.calibrate(
    load_trained(workdir, model_stage), dataset.dev.texts, dataset.dev.labels
  )
  # one value for every process (their attack shards are matched by it), the primary's
  fit["value"] = distributed.broadcast_float(fit["value"])
  results["attack_temperature"] = {"source": CALIBRATED, "stage": model_stage, **fit}
  write_results(workdir, results)
  logging.info(
    "attack temperature %s (dev NLL %.4f at T=1, %.4f at T; %.0f%% of dev saturated at T=1)",
    fit["value"],
    fit["nll_at_1"],
    fit["nll"],
    100 * fit["saturated"],
  )
  return fit["value"]


def timed_attack(results, key, path, indices, **kwargs) -> list[dict]:
  """attack_examples, adding the time spent to timings_s[key] (a resumed stage adds up)."""
  job = kwargs["job"]
  already = set(current_records(path, job))
  t0 = time.perf_counter()
  records = attack_examples(out_path=path, indices=indices, **kwargs)
  if not set(indices) <= already:
    results["timings_s"][key] = results["timings_s"].get(key, 0.0) + time.perf_counter() - t0
  return records


def attack_round(config, workdir, data: RunData, results, k: int, model_stage: str) -> list[dict]:
  """Attacks the training set (or its seeded sample) with the model of `model_stage` (a stage, or
  a stage's latest/ epoch), in inference or training mode (attack.model_mode)."""
  indices = augment.attack_indices(len(data.train), config.attack.num_examples, config.seed, k)
  job = attack_job(
    config,
    workdir,
    config.attack.recipe,
    model_stage,
    training_mode=config.attack.model_mode == "training",
  )
  return timed_attack(
    results,
    f"attack_round_{k}",
    workdir / "adversarial" / f"round_{k}.jsonl",
    indices,
    job=job,
    texts=data.dataset.train.texts,
    labels=data.dataset.train.labels,
    workers=config.attack.workers,
    desc=f"round {k}: {config.attack.recipe} on train",
  )


DEV_SAMPLE_SEED = 0


def dev_sample(num_dev: int, num_examples: int) -> list[int]:
  """The dev examples a run's robustness is selected on: one seeded sample (all of dev if smaller),
  the same for every run whatever its seed, so that runs are compared on the same examples."""
  order = np.random.RandomState(DEV_SAMPLE_SEED).permutation(num_dev)
  return sorted(order[: min(num_examples, num_dev)].tolist())


def dev_robustness(config, workdir, dataset, results, model_stage: str) -> None:
  """After-attack accuracy of the run's model on a seeded sample of dev (eval.dev_examples), with
  the training recipe in inference mode -> results["dev_after_attack"]. Used to select settings."""
  indices = dev_sample(len(dataset.dev), config.eval.dev_examples)
  recipe = config.attack.recipe
  temperature = attack_temperature(config, workdir, dataset, results, model_stage)
  records = timed_attack(
    results,
    f"attack_dev_{recipe}",
    workdir / "attacks" / f"dev_{recipe}.jsonl",
    indices,
    job=attack_job(config, workdir, recipe, model_stage, temperature=temperature),
    texts=dataset.dev.texts,
    labels=dataset.dev.labels,
    workers=config.attack.workers,
    desc=f"{recipe} on dev",
  )
  results["dev_after_attack"] = {recipe: {**summarize(records), "temperature": temperature}}
  write_results(workdir, results)
  logging.info(
    "after %s on %d dev examples: %s", recipe, len(indices), results["dev_after_attack"][recipe]
  )


def static_sets(config, workdir, results, dataset, model_stage: str) -> None:
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
    scored[name] = {
      "path": str(path),
      "stage": model_stage,
      "num_examples": len(texts),
      "accuracy": float(100.0 * np.mean(predicted == np.asarray(labels))),
    }
    logging.info(
      "static set %s: accuracy %.2f on %d texts", name, scored[name]["accuracy"], len(texts)
    )
    write_results(workdir, results)


def after_attack(config, workdir, results, dataset, model_stage: str) -> None:
  """After-attack figures on the first eval.num_examples test examples, per eval.attacks recipe;
  accuracy on the fixed adversarial sets of eval.static_sets."""
  static_sets(config, workdir, results, dataset, model_stage)
  texts, labels = dataset.test.texts, dataset.test.labels
  count = min(config.eval.num_examples or len(texts), len(texts))
  temperature = (
    attack_temperature(config, workdir, dataset, results, model_stage)
    if config.eval.attacks
    else 1.0
  )
  for recipe in config.eval.attacks:
    records = timed_attack(
      results,
      f"attack_test_{recipe}",
      workdir / "attacks" / f"test_{recipe}.jsonl",
      range(count),
      job=attack_job(config, workdir, recipe, model_stage, temperature=temperature),
      texts=texts,
      labels=labels,
      workers=config.attack.workers,
      desc=f"{recipe} on test",
    )
    results["after_attack"][recipe] = {
      **summarize(records),
      "temperature": temperature,
      **({"budget": config.attack.budget} if config.attack.budget else {}),
    }
    write_results(workdir, results)
    logging.info("after %s: %s", recipe, results["after_attack"][recipe])
    key = records_key(records, temperature, config.attack.budget)
    attack_quality(results, recipe, records, key)
    write_results(workdir, results)
    interpret(config, workdir, results, recipe, records, model_stage, key)
  # on the texts the attacks evaluate (the first eval.num_examples), at most faithfulness_examples
  faithfulness(config, workdir, results, texts[:count], model_stage, temperature)


def attributor(config, trained, method: str):
  from flat_jax.attacks.bridge import PredictionBridge
  from flat_jax.interpret.lime import word_attributor_lime

  if method == "ig":
    return interpret_pairs.word_attributor_ig(trained, steps=config.eval.ig_steps)
  return word_attributor_lime(
    PredictionBridge.from_trained(trained),
    trained.num_classes,
    num_samples=config.eval.lime_samples,
    max_words=trained.config.data.max_length,
    seed=config.seed,
  )


def faithfulness(config, workdir, results, texts, model_stage: str, temperature: float) -> None:
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

  chosen = list(texts[: config.eval.faithfulness_examples])
  done = results.setdefault("faithfulness", {})
  trained = None
  for method in config.eval.interpret:
    previous = done.get(method, {})
    if (
      previous.get("stage") == model_stage
      and previous.get("requested") == len(chosen)
      and previous.get("temperature") == temperature
    ):
      continue
    trained = trained or load_trained(workdir, model_stage)
    t0 = time.perf_counter()
    curves = perturbation_curves(
      PredictionBridge.from_trained(trained, temperature=temperature),
      chosen,
      attributor(config, trained, method)(chosen),
      seed=config.seed,
    )
    done[method] = {
      **curves,
      "stage": model_stage,
      "requested": len(chosen),
      "temperature": temperature,
    }
    results["timings_s"][f"faithfulness_{method}"] = time.perf_counter() - t0
    write_results(workdir, results)
    if curves.get("num_texts"):
      logging.info(
        "%s faithfulness on %d test texts: comprehensiveness AOPC %.3f (random %.3f), "
        "sufficiency %.3f (random %.3f)",
        method,
        curves["num_texts"],
        curves["aopc_comprehensiveness"],
        curves["aopc_comprehensiveness_random"],
        curves["aopc_sufficiency"],
        curves["aopc_sufficiency_random"],
      )


def records_key(records, temperature: float, budget: str) -> dict:
  """What a figure computed from attack records was computed from: a cached figure is reused only
  while this is unchanged (the records' temperature and budget, and how many there are)."""
  return {
    "temperature": temperature,
    "num_records": len(records),
    **({"budget": budget} if budget else {}),
  }


def same_records(done: dict | None, key: dict) -> bool:
  """An entry made before num_records / budget were kept counts for the full key's defaults."""
  return done is not None and all(
    done.get(k, {"temperature": 1.0, "budget": ""}.get(k, v)) == v
    for k, v in {**key, "budget": key.get("budget", "")}.items()
  )


def attack_quality(results, recipe: str, records, key: dict) -> None:
  """results["attack_quality"][recipe]: the adversarial examples' quality (attacks/quality.py),
  kept while the records it describes are (_records_key)."""
  from flat_jax.attacks import quality

  done = results.setdefault("attack_quality", {}).get(recipe)
  if same_records(done, key):
    return
  t0 = time.perf_counter()
  results["attack_quality"][recipe] = {**quality.summarize(quality.per_example(records)), **key}
  results["timings_s"][f"quality_{recipe}"] = time.perf_counter() - t0
  summary = results["attack_quality"][recipe]
  logging.info(
    "quality of %s's %d adversarial examples: similarity %s, synonyms %s, POS kept %s",
    recipe,
    summary["num_examples"],
    *(
      f"{summary[m]['mean']:.3f}" if summary[m].get("n") else "-"
      for m in ("similarity", "synonym_share", "pos_agreement")
    ),
  )


def interpret(config, workdir, results, recipe: str, records, model_stage: str, key: dict) -> None:
  """Interpretation consistency on the recipe's original/adversarial test pairs, per eval.interpret
  method; a method already in results.json for these records (_records_key; entries without a
  temperature were made at 1) is not recomputed."""
  from flat_jax.training.artifacts import load_trained

  interpretation = results.setdefault("interpretation", {})
  trained = None
  for method in config.eval.interpret:
    if same_records(interpretation.get(method, {}).get(recipe), key):
      continue
    trained = trained or load_trained(workdir, model_stage)
    t0 = time.perf_counter()
    attribute = attributor(config, trained, method)
    if method == "ig":
      chosen = records
    else:
      candidates = interpret_pairs.counterpart_records(records)
      rng = np.random.RandomState(config.seed)
      take = sorted(rng.permutation(len(candidates))[: config.eval.lime_pairs])
      chosen = [candidates[i] for i in take]
    interpretation.setdefault(method, {})[recipe] = {
      **interpret_pairs.pair_consistency(
        attribute, chosen, desc=f"{method} consistency ({recipe})"
      ),
      **key,
    }
    results["timings_s"][f"{method}_{recipe}"] = time.perf_counter() - t0
    write_results(workdir, results)
    logging.info("%s consistency under %s: %s", method, recipe, interpretation[method][recipe])
