"""The PyTorch reference of benchmarks/ computes the function flat_jax computes: same logits, same
FLAT loss and gradients on real SST-2 rows with adversarial twins, so the speed comparison of
benchmarks/train_step.py compares like with like."""

import gzip
import importlib.util
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from flat_jax.data.text import clean_text
from flat_jax.data.vocab import Vocab
from flat_jax.training import objectives

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
  "reference_torch", ROOT / "benchmarks" / "reference_torch.py"
)
ref = sys.modules.setdefault("reference_torch", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(ref)

BETA, GAMMA = 0.1, 0.5  # gamma large enough that a wrong L_imp shows in the loss
LENGTH = 24


@pytest.fixture(scope="module")
def rows(shared_data):
  """Six SST-2 dev sentences and twins with two words replaced (four rows have a twin)."""
  with gzip.open(shared_data / "sst2" / "dev.jsonl.gz", "rt", encoding="utf-8") as f:
    records = [json.loads(next(f)) for _ in range(6)]
  texts = [clean_text(r["text"]) for r in records]
  vocab = Vocab.build(texts)
  ids, lengths = vocab.encode_batch(texts, LENGTH)
  rng = np.random.default_rng(0)
  adv_ids = ids.copy()
  for row, n in enumerate(lengths):
    for position in rng.choice(n, 2, replace=False):
      adv_ids[row, position] = 2 + (adv_ids[row, position] + 5) % (len(vocab) - 2)
  has_adv = np.array([True, True, False, True, True, False])
  adv_ids[~has_adv] = ids[~has_adv]
  batch = {
    "ids": ids,
    "adv_ids": adv_ids,
    "has_adv": has_adv,
    "replaced": np.asarray(objectives.replaced_positions(ids, adv_ids)) & has_adv[:, None],
    "label": np.array([r["label"] for r in records], np.int32),
    "weight": np.array([1, 1, 1, 1, 1, 0], np.float32),  # a padding row, as batches have
    "index": np.arange(6, dtype=np.int32),
  }
  assert batch["replaced"].sum() > 0
  return vocab, batch


def _bert_rows(batch, pair):
  """Word ids -> pieces [CLS] w... [SEP] of the BERT vocabulary (ids above the specials)."""
  arch = pair.arch

  def pieces(ids):
    out = np.zeros((ids.shape[0], ids.shape[1] + 2), np.int32)
    for row, text in enumerate(ids):
      words = text[text != 0] + arch.sep_id + 1
      out[row, : len(words) + 2] = [arch.cls_id, *words, arch.sep_id]
    return out

  ids, adv_ids = pieces(batch["ids"]), pieces(batch["adv_ids"])
  return dict(
    batch,
    ids=ids,
    adv_ids=adv_ids,
    replaced=np.asarray(objectives.replaced_positions(ids, adv_ids)) & batch["has_adv"][:, None],
  )


_CASES = {}


def _case(name, rows):
  if name not in _CASES:
    _CASES[name] = _build_case(name, rows)
  return _CASES[name]


@pytest.fixture(scope="module", params=["cnn", "lstm", "bert"])
def case(request, rows):
  return _case(request.param, rows)


@pytest.fixture(scope="module")
def bert_case(rows):
  return _case("bert", rows)


def _build_case(name, rows):
  vocab, batch = rows
  # dropout off: inference ignores it, and the training-mode check must see the same function
  if name == "bert":
    # the benchmark's MiniLM code path at a quarter of its width and a third of its depth
    pair = ref.build_pair(
      "bert",
      "flat",
      vocab_size=len(vocab) + 110,
      dropout=0.0,
      bert_overrides=dict(
        num_hidden_layers=2, hidden_size=96, num_attention_heads=4, intermediate_size=192
      ),
    )
    batch = _bert_rows(batch, pair)
  else:
    pair = ref.build_pair(name, "flat", vocab_size=len(vocab), embed_dim=32, dropout=0.0)
  return pair, batch


def _jax_outputs(pair, params, batch, *, deterministic=True, rngs=None):
  texts = np.stack([batch["ids"], batch["adv_ids"]], 1)
  rows, per_row, length = texts.shape
  out, state = pair.flax_model.apply(
    {"params": params},
    texts.reshape(-1, length),
    deterministic=deterministic,
    rngs=rngs,
    capture_intermediates=True,
    mutable=["intermediates"],
  )
  out = {k: v.reshape((rows, per_row) + v.shape[1:]) for k, v in out.items()}
  ((_, _, sample),) = state["intermediates"]["word_mask"]["__call__"]
  return out, sample.reshape(rows, per_row, length)


def _jax_loss(pair, params, batch, deterministic=True, rngs=None):
  def loss(params, rngs):  # jitted: one compile instead of one per op
    out, sample = _jax_outputs(pair, params, batch, deterministic=deterministic, rngs=rngs)
    loss_sum, _ = objectives.flat_objective(BETA, GAMMA)(out, jax.tree.map(jnp.asarray, batch))
    return loss_sum / jnp.sum(batch["weight"]), (out, sample)

  return jax.jit(loss)(params, rngs)


def _torch_loss(pair, batch, samples=None, training=False):
  model = pair.torch_model.train(training)
  tb = ref.torch_batch(batch)
  out = ref.row_outputs(
    model, tb, None if samples is None else torch.from_numpy(np.asarray(samples))
  )
  return ref.objective_loss("flat", out, tb, BETA, GAMMA), out


def test_inference_logits_and_flat_loss_match(case):
  pair, batch = case
  loss, (out, _) = _jax_loss(pair, pair.params, batch)
  torch_loss, torch_out = _torch_loss(pair, batch)
  np.testing.assert_allclose(
    torch_out["logits"].detach().numpy(), np.asarray(out["logits"]), atol=1e-4
  )
  np.testing.assert_allclose(torch_out["phi"].detach().numpy(), np.asarray(out["phi"]), atol=1e-5)
  assert abs(float(torch_loss.detach()) - float(loss)) < 1e-4, (
    float(torch_loss.detach()),
    float(loss),
  )


def test_flat_loss_gradients_match(case):
  """The whole loss is differentiable on both sides, L_imp included (the authors' BERT L_imp was
  not): the word mask's gradients agree."""
  pair, batch = case
  grads = jax.grad(lambda p: _jax_loss(pair, p, batch)[0])(pair.params)["word_mask"]
  model = pair.torch_model
  model.zero_grad(set_to_none=True)
  _torch_loss(pair, batch)[0].backward()
  for layer in ("hidden_layer", "logit_layer"):
    torch_kernel = getattr(model.word_mask, layer).weight.grad.numpy().T
    ours = np.asarray(grads[layer]["kernel"])
    np.testing.assert_allclose(torch_kernel, ours, atol=1e-5 + 1e-3 * np.abs(ours).max())


def test_training_mode_loss_matches_with_the_same_mask_sample(case):
  """The Gumbel RNGs differ, so torch takes the 0/1 sample flat_jax drew; for BERT the dropped
  pieces also leave attention on both sides."""
  pair, batch = case
  loss, (_, sample) = _jax_loss(
    pair,
    pair.params,
    batch,
    deterministic=False,
    rngs={"mask": jax.random.PRNGKey(3), "dropout": jax.random.PRNGKey(4)},
  )
  sample = np.asarray(sample)
  assert set(np.unique(sample).tolist()) == {0.0, 1.0}
  torch_loss, _ = _torch_loss(pair, batch, samples=sample, training=True)
  assert abs(float(torch_loss.detach()) - float(loss)) < 1e-4, (
    float(torch_loss.detach()),
    float(loss),
  )


def test_bert_weights_round_trip_through_the_checkpoint_map(bert_case):
  pair, _ = bert_case
  from flat_jax.models import checkpoints_hf as hf

  state = {k: v.numpy() for k, v in pair.torch_model.bert.state_dict().items()}
  back = hf.convert_state_dict(pair.arch, state)["encoder"]
  jax.tree.map(
    lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
    back,
    pair.params["encoder"],
  )
