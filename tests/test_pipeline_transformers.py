"""BERT and DeBERTa through the same CLI, train step and evaluation as LSTM/CNN: a tiny random BERT
checkpoint in Hugging Face format (with the offline MiniLM's tokenizer), and a DeBERTa from scratch."""

import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch
import transformers

from flat_jax.attacks.bridge import PredictionBridge
from flat_jax.data.batching import PaddingTrim, batches, length_buckets
from flat_jax.data.datasets import load_dataset
from flat_jax.config import preset
from flat_jax.models.checkpoints_hf import default_bert_dir
from flat_jax.training.artifacts import load_trained
from flat_jax.data.encoding import EncodedSplit
from flat_jax.training.loop import predict_logits
from flat_jax.training.step import make_eval_step, make_mesh, model_apply_fn

TOKENIZER_FILES = (
  "vocab.txt",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
)


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
  """A random 2-layer BERT over the MiniLM vocabulary, saved as a user's checkpoint would be."""
  directory = tmp_path_factory.mktemp("tiny_bert")
  torch.manual_seed(0)
  config = transformers.BertConfig(
    vocab_size=30522,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
  )
  model = transformers.BertModel(config)
  with torch.no_grad():  # larger random weights: a model whose prediction depends on the words
    for weight in model.parameters():
      weight.add_(torch.randn(weight.shape) * 0.5)
  model.save_pretrained(directory)
  for name in TOKENIZER_FILES:
    shutil.copy(default_bert_dir() / name, directory / name)
  return directory


def _run(workdir, config, *overrides):
  cmd = [
    sys.executable,
    "-m",
    "flat_jax.main",
    "--config",
    config,
    "--workdir",
    str(workdir),
    "--config.data.train_limit=48",
    "--config.data.test_limit=24",
    "--config.data.max_length=32",
    "--config.train.epochs=1",
    "--config.train.eval_batch_size=32",
    *overrides,
  ]
  done = subprocess.run(cmd, capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads((workdir / "results.json").read_text())


def test_bert_flat_round_end_to_end(tmp_path, tiny_bert_dir, shared_data):
  workdir = tmp_path / "bert"
  results = _run(
    workdir,
    "configs/sst2_bert.py",
    f"--config.model.pretrained={tiny_bert_dir}",
    "--config.mode=flat",
    "--config.rounds=1",
    "--config.attack.num_examples=12",
    "--config.eval.num_examples=12",
    "--config.eval.ig_steps=4",
  )
  assert results["status"] == "finished" and results["model_stage"] == "train_flat_round_1"
  assert str(tiny_bert_dir) in results["pretrained"]
  assert results["rounds"][0]["kept"] > 0
  assert "vocab_added" not in results["rounds"][0]  # the tokenizer does not grow
  flat = [json.loads(l) for l in (workdir / "metrics.jsonl").open() if "flat" in l]
  assert flat and flat[0]["train_importance_l1"] > 0  # word-level L_imp on the twins
  assert results["interpretation"]["ig"]["textfooler"]["num_pairs"] >= 0
  assert (workdir / "architecture.json").exists() and (workdir / "tokenizer" / "vocab.txt").exists()

  # the workdir alone rebuilds the model; the attack bridge and the eval step agree on test texts
  trained = load_trained(workdir)
  assert "word_mask" in trained.params and trained.text.max_length == 32
  config = trained.config
  dataset = load_dataset(config.data, seed=config.seed)
  ids, word_ids = trained.text.encode_batch(dataset.test.texts)
  apply_fn = model_apply_fn(trained.model)
  mesh = make_mesh()
  split = EncodedSplit(ids, dataset.test.labels)
  logits = predict_logits(make_eval_step(apply_fn, mesh), trained.params, split, 32, mesh)
  probs = PredictionBridge.from_trained(trained)(dataset.test.texts)
  np.testing.assert_allclose(probs, jax.nn.softmax(logits), atol=1e-5)
  # cutting the padding (length-ordered, trimmed batches) changes nothing but the shapes
  trim = PaddingTrim(trained.text.pad_id, length_buckets(32))
  trimmed = predict_logits(make_eval_step(apply_fn, mesh), trained.params, split, 8, mesh, trim)
  np.testing.assert_allclose(trimmed, logits, atol=1e-5)
  results_acc = 100.0 * np.mean(np.argmax(logits, -1) == dataset.test.labels)
  assert results["standard_accuracy"] == pytest.approx(results_acc)

  # exported as a Hugging Face checkpoint: transformers computes the classifier without the mask
  out = tmp_path / "hf"
  done = subprocess.run(
    [sys.executable, "-m", "flat_jax.export", str(workdir), str(out)],
    capture_output=True,
    text=True,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  summary = json.loads((out / "flat_jax_export.json").read_text())
  assert (
    summary["word_mask"].startswith("left out") and summary["check"]["max_abs_logit_diff"] < 1e-4
  )
  hf = transformers.AutoModelForSequenceClassification.from_pretrained(
    out, local_files_only=True
  ).eval()
  assert type(hf).__name__ == "BertForSequenceClassification"
  assert hf.config.id2label == {0: "negative", 1: "positive"}
  tokenizer = transformers.AutoTokenizer.from_pretrained(out, local_files_only=True)
  assert (
    tokenizer("a film")["input_ids"]
    == transformers.AutoTokenizer.from_pretrained(tiny_bert_dir, local_files_only=True)("a film")[
      "input_ids"
    ]
  )
  with torch.no_grad():
    hf_logits = hf(
      input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(ids != 0)
    ).logits.numpy()
  plain = trained.model.clone(word_mask=None)
  unmasked = np.asarray(
    plain.apply(
      {"params": {k: v for k, v in trained.params.items() if k != "word_mask"}},
      ids,
      deterministic=True,
    )["logits"]
  )
  np.testing.assert_allclose(hf_logits, unmasked, atol=1e-4)
  # what leaving the mask out costs on these test texts (both printed for the record)
  print(
    "test accuracy with the mask",
    results_acc,
    "exported without it",
    100.0 * np.mean(hf_logits.argmax(-1) == dataset.test.labels),
  )


def test_deberta_from_scratch_trains_and_reloads(tmp_path, shared_data):
  """Trained with PGD (mode pgd: embedding-space adversarial training), which needs nothing from
  the model but its word-piece embeddings."""
  workdir = tmp_path / "deberta"
  results = _run(
    workdir,
    "configs/sst2_deberta.py",
    "--config.model.from_scratch=True",
    "--config.model.scratch_hidden=32",
    "--config.model.scratch_layers=1",
    "--config.model.scratch_heads=2",
    "--config.model.scratch_intermediate=64",
    "--config.stage=train",
    "--config.mode=pgd",
    "--config.rounds=0",
    "--config.embedding_adversary.steps=2",
  )
  assert results["status"] == "trained" and results["pretrained"].startswith("random deberta")
  assert results["model_stage"] == "train_pgd_round_0"
  trained = load_trained(workdir)
  assert type(trained.model).__name__ == "DebertaClassifier"
  assert trained.model.config.relative_attention and trained.model.config.num_layers == 1
  probs = PredictionBridge.from_trained(trained)(["a gripping , funny film", "dull"])
  assert probs.shape == (2, 2) and np.allclose(probs.sum(-1), 1.0, atol=1e-5)

  from flat_jax.export import export

  summary = export(workdir, tmp_path / "hf")
  assert summary["word_mask"] == "none" and summary["check"]["max_abs_logit_diff"] < 1e-4
  hf = transformers.AutoModelForSequenceClassification.from_pretrained(
    tmp_path / "hf", local_files_only=True
  )
  assert type(hf).__name__ == (
    "DebertaV2ForSequenceClassification"
    if trained.model.config.version == 2
    else "DebertaForSequenceClassification"
  )


def test_deberta_without_a_checkpoint_says_what_to_pass(tmp_path, shared_data):
  cmd = [
    sys.executable,
    "-m",
    "flat_jax.main",
    "--config",
    "configs/sst2_deberta.py",
    "--workdir",
    str(tmp_path / "d"),
    "--config.data.train_limit=8",
  ]
  done = subprocess.run(cmd, capture_output=True, text=True)
  assert done.returncode != 0
  assert "model.pretrained" in done.stderr and "from_scratch" in done.stderr


def test_trim_padding_cuts_every_sequence_array_to_the_bucket():
  ids = np.zeros((3, 32), np.int32)
  ids[0, :5], ids[1, :9] = 7, 7
  adv = ids.copy()
  adv[2, :20] = 7  # a twin longer than every original
  rows = list(
    batches(
      ids,
      np.zeros(3, np.int32),
      3,
      extra={"adv_ids": adv, "word_ids": ids - 1, "has_adv": np.ones(3, bool)},
    )
  )[0]
  cut = PaddingTrim(0, length_buckets(32, 8))(rows)
  assert cut["ids"].shape == (3, 24) and cut["adv_ids"].shape == (3, 24)
  assert cut["word_ids"].shape == (3, 24) and cut["has_adv"].shape == (3,)
  assert length_buckets(50) == (16, 32, 48, 50)
  np.testing.assert_array_equal(PaddingTrim(0, (32,)).lengths(ids), [5, 9, 0])


@pytest.mark.parametrize("name", ["bert", "deberta"])
def test_a_perturbation_of_the_piece_embeddings_moves_the_logits_zero_does_not(name, shared_data):
  """The embedding adversary's entry point into the transformers (modes pgd and freelb)."""
  from flat_jax.models import transformer

  c = preset("sst2", name).model
  c.from_scratch, c.scratch_hidden, c.scratch_layers, c.scratch_heads, c.scratch_intermediate = (
    True,
    32,
    1,
    2,
    64,
  )
  source = transformer.load_source(c)
  model = transformer.build(source.arch, 2, c, with_mask=False)
  params = transformer.init_params(model, source, seed=0)
  ids = np.asarray(source.tokenizer(["a gripping , funny film"])["input_ids"], np.int32)
  embedded = model.apply({"params": params}, ids, method=model.embed_tokens)
  outputs = model.apply({"params": params}, ids)
  clean = outputs["logits"]
  # the adversary perturbs every attended piece, [CLS] and [SEP] included (TextDefender's mask)
  assert bool(outputs["input_mask"][0, 0]) and bool(outputs["input_mask"][0, -1])
  assert not bool(outputs["token_mask"][0, 0]) and int(outputs["input_mask"].sum()) == ids.shape[1]
  np.testing.assert_array_equal(
    model.apply({"params": params}, ids, perturbation=np.zeros(embedded.shape, np.float32))[
      "logits"
    ],
    clean,
  )
  noise = np.random.RandomState(0).normal(size=embedded.shape).astype(np.float32)
  assert not np.allclose(
    model.apply({"params": params}, ids, perturbation=noise)["logits"], clean, atol=1e-4
  )
