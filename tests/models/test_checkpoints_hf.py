import gzip
import json
import logging
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file, save_file

from flat_jax.models.bert import (
  BertClassifier,
  BertConfig,
  BertEncoder,
  word_ids_from_encoding,
  word_ids_from_pieces,
)
from flat_jax.models.checkpoints_hf import (
  CheckpointError,
  build_classifier,
  default_bert_dir,
  init_classifier_params,
  load_hf_checkpoint,
)
from flat_jax.models.word_mask import WordMask
from hf_reference import max_abs_diff, perturb_, save

TOL = 1e-5


def test_minilm_matches_pytorch_bert_model(shared_data):
  directory = default_bert_dir()
  arch, params, tokenizer = load_hf_checkpoint(directory)
  assert isinstance(arch, BertConfig) and (arch.num_layers, arch.hidden_size) == (6, 384)
  assert (arch.cls_id, arch.sep_id, arch.pad_id) == (101, 102, 0)
  with gzip.open(shared_data / "sst2" / "test.jsonl.gz", "rt") as f:
    texts = [json.loads(next(f))["text"] for _ in range(5)]
  batch = tokenizer(texts, padding=True, return_tensors="np")
  assert len(set((batch["attention_mask"].sum(1)).tolist())) > 1  # different lengths: real padding

  with torch.no_grad():
    reference = transformers.BertModel.from_pretrained(str(directory), local_files_only=True).eval()
    ref = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()
  encoder = BertEncoder(arch)
  hidden, _ = jax.jit(lambda p, i, m, t: encoder.apply({"params": p}, i, m, t))(
    params["encoder"], batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
  )

  mask = batch["attention_mask"][..., None].astype(np.float32)
  mean_pool = lambda h: (np.asarray(h) * mask).sum(1) / mask.sum(1)
  diffs = {
    "mean_pooled": max_abs_diff(mean_pool(hidden), mean_pool(ref)),
    "hidden": max_abs_diff(hidden, ref, batch["attention_mask"]),
  }
  print("MiniLM parity max abs diff:", diffs)
  assert diffs["mean_pooled"] < TOL and diffs["hidden"] < TOL


def test_word_ids_follow_the_tokenizer(shared_data):
  tokenizer = transformers.AutoTokenizer.from_pretrained(
    str(default_bert_dir()), local_files_only=True
  )
  words = ["an", "unbelievably", "heartwarming", "film"]
  encoding = tokenizer(words, is_split_into_words=True)
  pieces = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
  assert any(p.startswith("##") for p in pieces)
  np.testing.assert_array_equal(word_ids_from_encoding(encoding), word_ids_from_pieces(pieces))
  assert word_ids_from_encoding(encoding).max() == len(words) - 1


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
  torch.manual_seed(0)
  config = transformers.BertConfig(
    vocab_size=99,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=20,
    max_position_embeddings=32,
    num_labels=2,
  )
  directory = tmp_path_factory.mktemp("tiny_bert")
  save(perturb_(transformers.BertForSequenceClassification(config)), directory, "safetensors")
  return directory


def _edited_copy(source, target, edit):
  shutil.copytree(source, target)
  tensors = load_file(str(target / "model.safetensors"))
  edit(tensors)
  save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
  return target


def test_error_names_every_missing_and_misshapen_tensor(tiny_checkpoint, tmp_path):
  def edit(t):
    del t["bert.encoder.layer.1.attention.self.key.weight"]
    del t["bert.embeddings.LayerNorm.bias"]
    t["bert.encoder.layer.0.intermediate.dense.weight"] = np.zeros((21, 16), np.float32)

  broken = _edited_copy(tiny_checkpoint, tmp_path / "broken", edit)
  with pytest.raises(CheckpointError) as error:
    load_hf_checkpoint(broken, with_tokenizer=False)
  message = str(error.value)
  assert str(broken) in message
  assert "missing: encoder.layer.1.attention.self.key.weight" in message
  assert "missing: embeddings.LayerNorm.bias" in message
  assert (
    "encoder.layer.0.intermediate.dense.weight: checkpoint (21, 16), model expects (20, 16)"
    in message
  )


def test_base_model_names_extras_and_absent_head(tiny_checkpoint, tmp_path, caplog):
  """No `bert.` prefix, a stray position_ids buffer, an MLM head, no pooler and no classifier: the
  pooler and the head are freshly initialised, and the log says so."""

  def edit(t):
    for name in list(t):
      if name.startswith("classifier.") or "pooler" in name:
        del t[name]
      else:
        t[name.removeprefix("bert.")] = t.pop(name)
    t["embeddings.position_ids"] = np.arange(32, dtype=np.int64)[None]
    t["cls.predictions.bias"] = np.zeros(99, np.float32)

  bare = _edited_copy(tiny_checkpoint, tmp_path / "bare", edit)
  with caplog.at_level(logging.INFO, logger="flat_jax.models.checkpoints_hf"):
    arch, pretrained, _ = load_hf_checkpoint(bare, with_tokenizer=False)
    assert set(pretrained) == {"encoder"}
    model = build_classifier(arch, 4, WordMask(hidden=8))
    params = init_classifier_params(model, pretrained, jax.random.PRNGKey(0))
  log = caplog.text
  assert "no pooler in the checkpoint" in log and "no classifier in the checkpoint" in log
  assert "word mask is freshly initialised" in log and "not used" not in log
  _, full, _ = load_hf_checkpoint(tiny_checkpoint, with_tokenizer=False)
  np.testing.assert_array_equal(
    params["encoder"]["layers_1"]["output"]["kernel"],
    full["encoder"]["layers_1"]["output"]["kernel"],
  )
  assert params["classifier"]["kernel"].shape == (16, 4)
  out = model.apply({"params": params}, jnp.array([[101, 5, 6, 102, 0]]))
  assert out["logits"].shape == (1, 4) and "phi" in out


def test_checkpoint_head_is_kept_when_it_fits(tiny_checkpoint, caplog):
  arch, pretrained, _ = load_hf_checkpoint(tiny_checkpoint, with_tokenizer=False)
  with caplog.at_level(logging.INFO, logger="flat_jax.models.checkpoints_hf"):
    params = init_classifier_params(BertClassifier(arch, 2), pretrained, jax.random.PRNGKey(0))
    refit = init_classifier_params(BertClassifier(arch, 5), pretrained, jax.random.PRNGKey(0))
  assert params["classifier"] is pretrained["classifier"]
  assert refit["classifier"]["kernel"].shape == (16, 5)
  assert "does not fit 5 classes" in caplog.text


def test_unsupported_model_type_and_missing_files(tmp_path):
  with pytest.raises(CheckpointError, match="no config.json"):
    load_hf_checkpoint(tmp_path)
  (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta", "vocab_size": 5}))
  with pytest.raises(CheckpointError, match="unsupported model_type 'roberta'"):
    load_hf_checkpoint(tmp_path, with_tokenizer=False)
  (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 5}))
  with pytest.raises(CheckpointError, match="no model.safetensors or pytorch_model.bin"):
    load_hf_checkpoint(tmp_path, with_tokenizer=False)


def test_a_gpt2_style_bpe_tokenizer_takes_word_lists(tmp_path):
  """DeBERTa v1's tokenizer (byte-level BPE) refuses word lists unless add_prefix_space is set."""
  import json
  from flat_jax.data.pieces import PieceEncoder
  from flat_jax.models.checkpoints_hf import load_tokenizer

  specials = ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"]
  merges = ["Ġ f", "Ġf i", "Ġfi l", "Ġfil m"]
  vocab = {
    t: i
    for i, t in enumerate(
      specials + list("abcdefghijklmnopqrstuvwxyzĠ") + [m.replace(" ", "") for m in merges]
    )
  }
  (tmp_path / "vocab.json").write_text(json.dumps(vocab))
  (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
  saved = transformers.DebertaTokenizerFast(
    vocab_file=str(tmp_path / "vocab.json"),
    merges_file=str(tmp_path / "merges.txt"),
    bos_token="[CLS]",
    eos_token="[SEP]",
    cls_token="[CLS]",
    sep_token="[SEP]",
    pad_token="[PAD]",
    unk_token="[UNK]",
    mask_token="[MASK]",
  )
  assert saved.add_prefix_space is False
  saved.save_pretrained(tmp_path)
  pieces = PieceEncoder(load_tokenizer(tmp_path), 16)
  ids, word_ids = pieces.encode_batch(["zebra film"])
  tokens = pieces.tokenizer.convert_ids_to_tokens(ids[0])
  assert tokens[:2] == ["[CLS]", "Ġ"] and tokens[7:9] == ["Ġfilm", "[SEP]"]
  assert word_ids[0, :9].tolist() == [-1, 0, 0, 0, 0, 0, 0, 1, -1]
