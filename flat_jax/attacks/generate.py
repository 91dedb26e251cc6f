"""Attack a list of examples with a recipe: parallel worker processes, resumable JSON lines.

Each worker process loads the trained model from its workdir into its own bridge, builds the
recipe, and attacks the examples it pulls from a shared queue. Results are appended to a JSON-lines
file as they arrive; a re-run skips the indices already there (a line cut short by a kill is
dropped and redone). Randomised searches are seeded per example, so the set does not depend on how
many workers there are or which worker took which example.

With `search="batched"` (the default) a recipe whose search is TextAttack's GreedyWordSwapWIR
(TextFooler, PWWS) runs in lockstep_search instead: a worker keeps up to `lockstep_examples`
examples in flight, pulling the next one as one finishes, and every model query, POS tagging and
sentence-encoder call carries the candidates of all of them. The records are TextAttack's (see
lockstep_search for the one float-rounding caveat); examples still in flight when a run is killed
are attacked again on resume. Other recipes, and `search="textattack"`, take TextAttack's own
search, one example at a time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing as mp
import os
import pathlib
import queue as queue_lib
import random
import threading
import time
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from flat_jax import distributed, runtime
from flat_jax.attacks.lockstep_search import Outcome
from flat_jax.attacks.pairs import aligned_tokens, replaced_pairs


@dataclasses.dataclass(frozen=True)
class AttackJob:
  model_dir: str  # workdir of the trained model (config.json, vocab.json, checkpoints)
  recipe: str
  stage: str = ""  # checkpoint stage; empty = the run's final model
  seed: int = 1111
  synonym_vectors: str = ""
  masked_lm: str = ""
  hownet_candidates: str = ""
  query_budget: int = 0
  training_mode: bool = (
    False  # query the model with sampled masks and dropout (the authors' rounds)
  )
  synonym_min_cos: float = 0.0  # embedding-swap candidates' cosine bound; 0 = the space's own
  temperature: float = 1.0  # the model's probabilities are softmax(logits / temperature)
  budget: str = ""  # "" = the recipe's own settings; "textdefender" (recipes.BUDGETS)
  # "batched": recipes whose search lockstep_search runs (TextFooler, PWWS) attack many examples
  # at once; "textattack": TextAttack's own search, one example at a time (the reference path)
  search: str = "batched"
  lockstep_examples: int = 32  # examples a worker attacks in lockstep (search="batched")
  sentence_encoder: str = "flax"  # "flax", "numpy" or a USE SavedModel folder (config.py)

  def __post_init__(self):
    from flat_jax.config import SEARCHES

    if self.search not in SEARCHES:
      raise ValueError(f"unknown attack search {self.search!r}; choose from {', '.join(SEARCHES)}")
    if self.lockstep_examples < 1:
      raise ValueError(f"lockstep_examples must be >= 1, not {self.lockstep_examples}")


def read_records(path) -> dict[int, dict]:
  """Records already written, by example index; a truncated last line is ignored."""
  path = pathlib.Path(path)
  records = {}
  if not path.exists():
    return records
  for line in path.read_text(encoding="utf-8").splitlines():
    try:
      record = json.loads(line)
    except json.JSONDecodeError:
      continue
    records[record["index"]] = record
  return records


def current_records(path, job: AttackJob) -> dict[int, dict]:
  """read_records without the records made at another temperature or under another attack budget
  (records before temperatures were recorded were made at 1)."""
  return {
    i: r
    for i, r in read_records(path).items()
    if r.get("temperature", 1.0) == job.temperature and r.get("budget", "") == job.budget
  }


def _write_records(path: pathlib.Path, records: dict[int, dict]) -> None:
  # through a temporary file: a kill during the rewrite leaves the old file, not half of it
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text("".join(json.dumps(records[i]) + "\n" for i in sorted(records)), encoding="utf-8")
  os.replace(tmp, path)


def records_by_index(path) -> list[dict]:
  """`read_records` as a list in example order."""
  return [record for _, record in sorted(read_records(path).items())]


def _outcome(result) -> Outcome:
  """A TextAttack AttackResult as the fields a record keeps."""
  from textattack.attack_results import FailedAttackResult, SkippedAttackResult

  return Outcome(
    status="skipped"
    if isinstance(result, SkippedAttackResult)
    else "failed"
    if isinstance(result, FailedAttackResult)
    else "successful",
    original=result.original_result.attacked_text.text,
    perturbed=result.perturbed_result.attacked_text.text,
    queries=int(result.perturbed_result.num_queries),
    original_output=int(result.original_result.output),
    perturbed_output=int(result.perturbed_result.output),
  )


def _record(index: int, label: int, outcome, job: AttackJob) -> dict:
  original, perturbed = outcome.original, outcome.perturbed
  pairs = replaced_pairs(original, perturbed) if outcome.status != "skipped" else []
  words = max(1, len(aligned_tokens(original, perturbed)[0]))
  record = {
    "index": index,
    "label": label,
    "status": outcome.status,
    "original": original,
    "perturbed": perturbed,
    "queries": int(outcome.queries),
    "original_output": int(outcome.original_output),
    "perturbed_output": int(outcome.perturbed_output),
    "replaced": [list(p) for p in pairs],
    "perturbed_fraction": len(pairs) / words,
    "temperature": job.temperature,
  }
  if job.budget:
    record["budget"] = job.budget
  return record


class _Attacker:
  """Model + recipe in one process. `threads`: the BLAS threads its sentence encoder may use
  (None: the encoder's default). `lockstep` is the batched search when the job asks for it and
  the recipe's search is one it runs, else None (TextAttack's search, one example at a time)."""

  def __init__(self, job: AttackJob, threads: int | None = None):
    from flat_jax.attacks import resources

    resources.prepare_textattack_environment()
    from flat_jax.attacks.bridge import PredictionBridge, textattack_wrapper
    from flat_jax.attacks.recipes import AttackResources, build_attack
    from flat_jax.training.artifacts import load_trained

    self.job = job
    self.bridge = PredictionBridge.from_trained(
      load_trained(job.model_dir, job.stage or None),
      noise_seed=job.seed if job.training_mode else None,
      temperature=job.temperature,
    )
    res = AttackResources(
      job.synonym_vectors,
      job.masked_lm,
      job.hownet_candidates,
      job.query_budget,
      job.synonym_min_cos,
      job.budget,
      job.sentence_encoder,
    )
    self.attack = build_attack(
      job.recipe, textattack_wrapper(self.bridge), res, encoder_threads=threads
    )
    self.lockstep = None
    if job.search == "batched":
      from flat_jax.attacks import lockstep_search

      reason = lockstep_search.unsupported_reason(self.attack)
      if reason is None:
        self.lockstep = lockstep_search.LockstepGreedyWordSwapWIR(
          self.attack, self.bridge, job.lockstep_examples
        )
      else:
        logging.info("%s: TextAttack's own search (%s)", job.recipe, reason)

  def attack_all(self, tasks):
    """Records of the (index, text, label) tasks, as each finishes (not in task order with the
    lockstep search, which pulls the next task whenever one of its examples finishes)."""
    if self.lockstep is None:
      for task in tasks:
        yield self(*task)
      return
    # GreedyWordSwapWIR with these rankings draws no random numbers: no per-example seeds needed
    labels = {}

    def remembered(tasks):
      for index, text, label in tasks:
        labels[index] = int(label)
        yield index, text, label

    for index, outcome in self.lockstep.run(remembered(tasks)):
      yield _record(index, labels.pop(index), outcome, self.job)

  def __call__(self, index: int, text: str, label: int) -> dict:
    # per-example seeds: the same result whichever worker attacks this example
    random.seed(self.job.seed + index)
    np.random.seed((self.job.seed + index) % 2**32)
    import torch

    torch.manual_seed(self.job.seed + index)
    before = self.bridge.gradient_calls
    record = _record(index, label, _outcome(self.attack.attack(text, label)), self.job)
    if self.bridge.gradient_calls > before:  # a gradient attack (hotflip)
      record["gradient_calls"] = self.bridge.gradient_calls - before
    return record


def _worker(
  job: AttackJob, tasks, results, threads: int | None = None, parent: int | None = None
) -> None:
  """Attacks the tasks it pulls until a None. Leaves as soon as its parent (`parent` pid) is gone:
  a run killed with SIGKILL or SIGTERM runs no clean-up, and its workers would go on attacking the
  rest of the queue for nobody."""
  logging.getLogger().setLevel(logging.WARNING)
  if parent is not None:
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
  try:
    runtime.enable_compilation_cache()
  except Exception as e:  # only slower without it
    logging.warning("attack worker: no persistent compilation cache (%s: %s)", type(e).__name__, e)
  try:
    attacker = _Attacker(job, threads)
  except Exception as e:  # report and stop: the parent raises it
    results.put(("error", f"{type(e).__name__}: {e}"))
    return
  current = []  # the last task pulled, to name it in an error

  def pulled():
    while True:
      task = tasks.get()
      if task is None:
        return
      current[:] = [task[0]]
      yield task

  try:
    for record in attacker.attack_all(pulled()):
      results.put(("record", record))
  except Exception as e:
    where = "" if attacker.lockstep is not None or not current else f"example {current[0]}: "
    results.put(("error", f"{where}{type(e).__name__}: {e}"))


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
  while os.getppid() == parent:
    time.sleep(every_s)
  os._exit(0)


def _available_cpus() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def summarize(records: Sequence[dict]) -> dict:
  """After-attack figures as results.json holds them (accuracies in percent)."""
  n = len(records)
  successful = [r for r in records if r["status"] == "successful"]
  failed = [r for r in records if r["status"] == "failed"]
  attacked = successful + failed
  return {
    "num_examples": n,
    "accuracy": 100.0 * len(failed) / n if n else 0.0,
    "original_accuracy": 100.0 * len(attacked) / n if n else 0.0,
    "success_rate": 100.0 * len(successful) / len(attacked) if attacked else 0.0,
    "avg_queries": float(np.mean([r["queries"] for r in attacked])) if attacked else 0.0,
    "avg_perturbed_fraction": float(np.mean([r["perturbed_fraction"] for r in successful]))
    if successful
    else 0.0,
    **(
      {"avg_gradient_calls": float(np.mean([r.get("gradient_calls", 0) for r in attacked]))}
      if any("gradient_calls" in r for r in records)
      else {}
    ),
  }


def attack_examples(
  job: AttackJob,
  texts: Sequence[str],
  labels: Sequence[int],
  out_path,
  *,
  workers: int = 1,
  indices: Sequence[int] | None = None,
  desc: str = "attack",
) -> list[dict]:
  """Attacks texts[i] for i in indices (default all); returns the records sorted by index. In a run
  over several processes each process attacks its share (`_attack_shard`), and all of them return
  the same merged records."""
  out_path = pathlib.Path(out_path)
  out_path.parent.mkdir(parents=True, exist_ok=True)
  indices = list(range(len(texts))) if indices is None else list(indices)
  if distributed.process_count() > 1:
    return _attack_shard(job, texts, labels, out_path, workers, indices, desc)
  done = current_records(out_path, job)
  if done or out_path.exists():  # rewrite without a truncated last line or stale records
    _write_records(out_path, done)
  todo = [i for i in indices if i not in done]
  if todo:
    logging.info(
      "%s: %d examples to attack (%d already in %s), %d worker(s)",
      desc,
      len(todo),
      len(indices) - len(todo),
      out_path,
      workers,
    )
    _run(
      job,
      [(i, texts[i], int(labels[i])) for i in todo],
      out_path,
      workers,
      desc,
      done,
      len(indices),
    )
  records = current_records(out_path, job)
  if todo:
    # records arrive in the order they finish (the lockstep search, several workers): the finished
    # file is rewritten in index order, so a resumed or re-sharded run leaves the same file
    _write_records(out_path, records)
  return [records[i] for i in indices]


def shard_path(out_path: pathlib.Path, process: int, count: int) -> pathlib.Path:
  return out_path.with_name(f"{out_path.name}.part{process}of{count}")


def _attack_shard(job, texts, labels, out_path: pathlib.Path, workers, indices, desc) -> list[dict]:
  """Process p of P attacks indices[p::P] into its own part file (resumable like the whole file),
  then every process reads all parts, and the primary writes the merged file and removes the parts.
  Per-example seeds make the merged set the one a single process would have made."""
  me, count = distributed.process_index(), distributed.process_count()
  distributed.barrier(f"attack {out_path.name}: model saved")  # the model the workers load
  merged = current_records(out_path, job)
  part = shard_path(out_path, me, count)
  mine_done = current_records(part, job)
  if mine_done or part.exists():  # rewrite without a possibly truncated last line
    _write_records(part, mine_done)
  done = {**merged, **mine_done}
  mine = indices[me::count]
  todo = [i for i in mine if i not in done]
  if todo:
    logging.info(
      "%s: process %d of %d: %d of its %d examples to attack, %d worker(s)",
      desc,
      me,
      count,
      len(todo),
      len(mine),
      workers,
    )
    _run(
      job,
      [(i, texts[i], int(labels[i])) for i in todo],
      part,
      workers,
      f"{desc} [process {me}]",
      {},
      len(mine),
    )
  distributed.barrier(f"attack {out_path.name}: parts written")
  for process in range(count):
    merged.update(current_records(shard_path(out_path, process, count), job))
  missing = [i for i in indices if i not in merged]
  distributed.barrier(f"attack {out_path.name}: parts read")
  if missing:
    raise RuntimeError(
      f"{desc}: {len(missing)} examples missing after merging the processes' "
      f"parts of {out_path} (first: {missing[:5]})"
    )
  if distributed.is_primary():
    tmp = out_path.with_name(out_path.name + ".tmp")
    _write_records(tmp, merged)
    os.replace(tmp, out_path)
    for process in range(count):
      shard_path(out_path, process, count).unlink(missing_ok=True)
  return [merged[i] for i in indices]


PROGRESS_EVERY_S = 60.0


def _run(job, tasks, out_path, workers, desc, done, total):
  bar = tqdm(total=total, initial=total - len(tasks), desc=desc, disable=None, mininterval=2.0)
  counts = {"successful": 0, "failed": 0, "skipped": 0}
  queries = []
  start = last_log = time.perf_counter()

  def add(record, f):
    nonlocal last_log
    f.write(json.dumps(record) + "\n")
    f.flush()
    counts[record["status"]] += 1
    if record["status"] != "skipped":
      queries.append(record["queries"])
    attacked = counts["successful"] + counts["failed"]
    bar.set_postfix(
      success=f"{100 * counts['successful'] / max(1, attacked):.0f}%",
      queries=f"{np.mean(queries) if queries else 0:.0f}",
    )
    bar.update(1)
    now = time.perf_counter()
    if now - last_log >= PROGRESS_EVERY_S:  # a log line, for logs that are not a terminal
      last_log = now
      finished = sum(counts.values())
      rate = finished / max(now - start, 1e-9)
      logging.info(
        "%s: %d/%d, success rate %.1f%%, %.2f ex/s, about %.0f s left",
        desc,
        total - len(tasks) + finished,
        total,
        100 * counts["successful"] / max(1, attacked),
        rate,
        (len(tasks) - finished) / max(rate, 1e-9),
      )

  with open(out_path, "a", encoding="utf-8") as f:
    if workers <= 1:
      attacker = _Attacker(job)
      for record in attacker.attack_all(tasks):
        add(record, f)
    else:
      ctx = mp.get_context("spawn")  # JAX is not fork-safe
      task_queue, result_queue = ctx.Queue(), ctx.Queue()
      for task in tasks:
        task_queue.put(task)
      for _ in range(workers):
        task_queue.put(None)
      # each worker gets its share of the cores for the encoder's BLAS: more threads than cores
      # only make the processes wait for one another
      threads = max(1, _available_cpus() // workers)
      # a lockstep worker takes up to lockstep_examples tasks at once: with few tasks, the first
      # worker ready would take them all while the others idle
      share = dataclasses.replace(
        job, lockstep_examples=min(job.lockstep_examples, -(-len(tasks) // workers))
      )
      procs = [
        ctx.Process(
          target=_worker, args=(share, task_queue, result_queue, threads, os.getpid()), daemon=True
        )
        for _ in range(workers)
      ]
      for p in procs:
        p.start()
      try:
        received = 0
        while received < len(tasks):
          try:
            kind, payload = result_queue.get(timeout=5)
          except queue_lib.Empty:
            if not any(p.is_alive() for p in procs):
              raise RuntimeError(f"{desc}: all attack workers exited early") from None
            continue
          if kind == "error":
            raise RuntimeError(f"{desc}: attack worker failed: {payload}")
          add(payload, f)
          received += 1
      finally:
        for p in procs:
          if p.is_alive():
            p.terminate()
          p.join(timeout=10)
  bar.close()
  elapsed = time.perf_counter() - start
  logging.info(
    "%s: %d attacked in %.0f s (%.2f ex/s): %s",
    desc,
    len(tasks),
    elapsed,
    len(tasks) / max(elapsed, 1e-9),
    counts,
  )
