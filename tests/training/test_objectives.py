"""Each loss term against a hand-computed value on a tiny batch."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flat_jax.config import preset
from flat_jax.models.classifier import build_word_classifier
from flat_jax.training.objectives import make_objective, replaced_positions

# two rows; row 0 has an adversarial twin, row 1 does not
LOGITS = jnp.array([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 3.0], [9.9, 9.9]]])
KEEP = jnp.array([[[0.5, 0.8, 0.2], [0.5, 0.3, 0.2]], [[0.9, 0.1, 0.5], [0.1, 0.1, 0.1]]])
BATCH = {
  "ids": jnp.array([[4, 5, 0], [7, 8, 9]]),
  "adv_ids": jnp.array([[4, 6, 0], [7, 8, 9]]),
  "label": jnp.array([0, 1]),
  "has_adv": jnp.array([1, 0]),
  "weight": jnp.array([1.0, 1.0]),
}
OUTPUTS = {
  "logits": LOGITS,
  "phi": KEEP,
  "word_phi": KEEP,  # a word model: a position is a word
  "token_mask": BATCH["ids"][:, None] != 0,
}
OUTPUTS["token_mask"] = jnp.stack([BATCH["ids"] != 0, BATCH["adv_ids"] != 0], axis=1)


def ce(logits, label):
  return -float(jax.nn.log_softmax(jnp.asarray(logits))[label])


def h(p):
  return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def test_replaced_positions_ignore_padding_and_equal_words():
  np.testing.assert_array_equal(
    replaced_positions(BATCH["ids"], BATCH["adv_ids"]),
    [[False, True, False], [False, False, False]],
  )


def test_base_is_cross_entropy_on_originals():
  loss, m = make_objective("base")(OUTPUTS, BATCH)
  np.testing.assert_allclose(loss, ce([2, 0], 0) + ce([0, 3], 1), rtol=1e-6)
  assert float(m["correct"]) == 2


def test_adv_adds_twin_cross_entropy_only_where_a_twin_exists():
  loss, _ = make_objective("adv")(OUTPUTS, BATCH)
  np.testing.assert_allclose(loss, ce([2, 0], 0) + ce([0, 1], 0) + ce([0, 3], 1), rtol=1e-6)


def test_flat_terms_by_hand():
  beta, gamma = 0.1, 0.001
  _, m = make_objective("flat", beta, gamma)(OUTPUTS, BATCH)
  ce_sum = ce([2, 0], 0) + ce([0, 1], 0) + ce([0, 3], 1)
  # H(W|x) sums over real tokens: row 0 orig/adv have 2 real tokens, row 1 has 3 (its twin unused)
  ent = (h(0.5) + h(0.8)) + (h(0.5) + h(0.3)) + (h(0.9) + h(0.1) + h(0.5))
  imp = abs(0.8 - 0.3)  # only position 1 of row 0 is replaced
  np.testing.assert_allclose(m["ce"], ce_sum, rtol=1e-5)
  np.testing.assert_allclose(m["entropy"], ent, rtol=1e-5)
  np.testing.assert_allclose(m["importance_l1"], imp, rtol=1e-5)
  np.testing.assert_allclose(m["loss"], ce_sum - beta * ent + gamma * imp, rtol=1e-5)


def test_mean_entropy_divides_each_text_by_its_real_tokens():
  _, m = make_objective("flat", 0.1, 0.001, entropy_reduction="mean")(OUTPUTS, BATCH)
  ent = (h(0.5) + h(0.8)) / 2 + (h(0.5) + h(0.3)) / 2 + (h(0.9) + h(0.1) + h(0.5)) / 3
  np.testing.assert_allclose(m["entropy"], ent, rtol=1e-5)
  with pytest.raises(ValueError, match="entropy reduction"):
    make_objective("flat", 0.1, 0.001, entropy_reduction="max")(OUTPUTS, BATCH)


def test_padding_rows_do_not_count():
  objective = make_objective("flat", 0.1, 0.001)
  padded, _ = objective(OUTPUTS, {**BATCH, "weight": jnp.array([1.0, 0.0])})
  first_only, _ = objective(
    jax.tree.map(lambda x: x[:1], OUTPUTS), jax.tree.map(lambda x: x[:1], BATCH)
  )
  full, _ = objective(OUTPUTS, BATCH)
  np.testing.assert_allclose(padded, first_only, rtol=1e-6)
  assert abs(float(full) - float(padded)) > 1e-3


def test_importance_gradient_reaches_the_mask_network():
  """gamma * L_imp alone must train the mask (the authors' BERT code loses this gradient)."""
  model = build_word_classifier(preset("sst2", "cnn").model, 12, 2, 6, with_mask=True)
  ids = jnp.array([[3, 4, 5, 6, 0, 0]])
  adv = jnp.array([[3, 9, 5, 6, 0, 0]])
  params = model.init(jax.random.PRNGKey(0), ids)["params"]
  objective = make_objective("flat", beta=0.0, gamma=1.0)

  def imp_only(p):
    out = model.apply({"params": p}, jnp.concatenate([ids, adv]), deterministic=True)
    out = jax.tree.map(lambda x: x[None], out)
    _, m = objective(
      out,
      {
        "ids": ids,
        "adv_ids": adv,
        "label": jnp.array([0]),
        "has_adv": jnp.array([1]),
        "weight": jnp.array([1.0]),
      },
    )
    return m["importance_l1"]

  grads = jax.grad(imp_only)(params)
  assert float(imp_only(params)) > 0
  assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads["word_mask"]))
  assert all(float(jnp.abs(g).sum()) == 0 for g in jax.tree.leaves(grads["head"]))


def test_padded_mean_entropy_counts_every_position_padding_included():
  """The authors' entropy: a mean over all L positions, so row 0's padding (p = 0.2) counts."""
  _, m = make_objective("flat", 0.1, 0.001, entropy_reduction="padded_mean")(OUTPUTS, BATCH)
  ent = (
    (h(0.5) + h(0.8) + h(0.2)) / 3 + (h(0.5) + h(0.3) + h(0.2)) / 3 + (h(0.9) + h(0.1) + h(0.5)) / 3
  )
  np.testing.assert_allclose(m["entropy"], ent, rtol=1e-5)


def test_loss_on_probs_is_cross_entropy_of_the_softmax_probabilities():
  for mode in ("base", "adv", "flat"):
    _, plain = make_objective(mode, 0.0, 0.0)(OUTPUTS, BATCH)
    _, doubled = make_objective(mode, 0.0, 0.0, loss_on_probs=True)(OUTPUTS, BATCH)
    probs = [jax.nn.softmax(jnp.asarray(l)) for l in ([2.0, 0.0], [0.0, 1.0], [0.0, 3.0])]
    twin = mode != "base"
    expect = ce(probs[0], 0) + (ce(probs[1], 0) if twin else 0.0) + ce(probs[2], 1)
    np.testing.assert_allclose(doubled["loss"], expect, rtol=1e-5)
    # two classes: CE of probabilities lies in (log(1 + e^-1), log(1 + e)) per text
    assert math.log1p(math.exp(-1)) * 2 < float(doubled["loss"]) < math.log1p(math.e) * 3


def test_aligned_importance_adds_positions_the_word_alignment_did_not_mark():
  """L_imp over every aligned position (the authors): position 2 (padding in both, phi 0.2 vs 0.2)
  adds nothing, but a position the round's alignment left out (e.g. a pair of different lengths)
  counts, where the replaced-positions rule ignores it."""
  batch = {**BATCH, "replaced": jnp.array([[False, False, False], [False, False, False]])}
  _, replaced = make_objective("flat", 0.0, 1.0)(OUTPUTS, batch)
  _, aligned = make_objective("flat", 0.0, 1.0, importance_positions="aligned")(OUTPUTS, batch)
  assert float(replaced["importance_l1"]) == 0.0
  np.testing.assert_allclose(aligned["importance_l1"], abs(0.8 - 0.3), rtol=1e-5)
  with pytest.raises(ValueError, match="importance_positions"):
    make_objective("flat", 0.0, 1.0, importance_positions="all")
