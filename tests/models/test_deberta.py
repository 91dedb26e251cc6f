import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from transformers.models.deberta_v2 import modeling_deberta_v2

from flat_jax.models.checkpoints_hf import config_from_hf, convert_state_dict, load_hf_checkpoint
from flat_jax.models.deberta import (
  DebertaClassifier,
  DebertaConfig,
  DebertaEncoder,
  log_bucket_position,
  relative_position_table,
)
from flat_jax.models.word_mask import WordMask
from hf_reference import max_abs_diff, padded_batch, perturb_, save, torch_ids

TOL = 1e-5
CLS, SEP = 1, 2
BASE = dict(
  vocab_size=99,
  hidden_size=32,
  num_hidden_layers=2,
  num_attention_heads=4,
  intermediate_size=37,
  max_position_embeddings=64,
  num_labels=3,
)
# Lengths up to 14 with max_relative_positions 8 (v1) and 6 buckets up to 20 (v2) reach the clipped
# and the log-bucketed distances.
LENGTHS = [14, 9, 4, 11]

V1_CONFIGS = {
  # microsoft/deberta-base's shape: relative c2p|p2c, no absolute positions, no token types
  "base-like": dict(
    relative_attention=True,
    pos_att_type="c2p|p2c",
    max_relative_positions=8,
    position_biased_input=False,
    type_vocab_size=0,
  ),
  # absolute positions too, token types, talking heads, an embedding projection, one relative term
  "variants": dict(
    relative_attention=True,
    pos_att_type=["p2c"],
    max_relative_positions=-1,
    position_biased_input=True,
    type_vocab_size=2,
    talking_head=True,
    embedding_size=24,
    pooler_hidden_act="tanh",
  ),
}
V2_CONFIGS = {
  # DeBERTa-v3's shape: log buckets, shared attention key, LayerNormed relative embeddings
  "v3-like": dict(
    relative_attention=True,
    pos_att_type="p2c|c2p",
    position_buckets=6,
    max_relative_positions=20,
    share_att_key=True,
    norm_rel_ebd="layer_norm",
    position_biased_input=False,
    type_vocab_size=0,
  ),
  # DeBERTa-v2-xlarge's extras: convolution beside layer 1, separate position projections
  "v2-conv": dict(
    relative_attention=True,
    pos_att_type="c2p|p2c",
    max_relative_positions=10,
    share_att_key=False,
    conv_kernel_size=3,
    conv_groups=2,
    position_biased_input=True,
    type_vocab_size=2,
  ),
}


def hf_classifier(version, overrides, seed=0):
  torch.manual_seed(seed)
  if version == 1:
    return perturb_(
      transformers.DebertaForSequenceClassification(transformers.DebertaConfig(**BASE, **overrides))
    )
  return perturb_(
    transformers.DebertaV2ForSequenceClassification(
      transformers.DebertaV2Config(**BASE, **overrides)
    )
  )


def check_parity(version, name, overrides, fmt, directory):
  hf = hf_classifier(version, overrides)
  save(hf, directory, fmt)
  arch, pretrained, _ = load_hf_checkpoint(directory, with_tokenizer=False)
  assert arch.version == version
  ids, mask = padded_batch(99, LENGTHS, cls_id=CLS, sep_id=SEP)
  types = np.zeros_like(ids)
  types[0, 7:14] = 1
  with torch.no_grad():
    t_ids, t_mask, t_types = torch_ids(ids, mask, types)
    ref_hidden = hf.deberta(
      input_ids=t_ids, attention_mask=t_mask, token_type_ids=t_types
    ).last_hidden_state
    ref_logits = hf(input_ids=t_ids, attention_mask=t_mask, token_type_ids=t_types).logits

  model = DebertaClassifier(arch, 3)
  assert set(pretrained) == {"encoder", "pooler", "classifier"}
  forward = lambda m, i, t: (m.encoder(i, None, t), m(i, token_type_ids=t)["logits"])
  hidden, logits = jax.jit(lambda p, i, t: model.apply({"params": p}, i, t, method=forward))(
    pretrained, ids, types
  )
  diffs = {
    "hidden": max_abs_diff(hidden, ref_hidden.numpy(), mask),
    "logits": max_abs_diff(logits, ref_logits.numpy()),
  }
  print(f"DeBERTa v{version} {name} ({fmt}) max abs diff:", diffs)
  assert all(d < TOL for d in diffs.values()), diffs


@pytest.mark.parametrize(
  "name,fmt", [("base-like", "safetensors"), ("base-like", "bin"), ("variants", "bin")]
)
def test_parity_with_hf_deberta_v1(name, fmt, tmp_path):
  check_parity(1, name, V1_CONFIGS[name], fmt, tmp_path)


@pytest.mark.parametrize("name,fmt", [("v3-like", "safetensors"), ("v2-conv", "bin")])
def test_parity_with_hf_deberta_v2(name, fmt, tmp_path):
  check_parity(2, name, V2_CONFIGS[name], fmt, tmp_path)


def test_log_buckets_match_hf():
  for buckets, max_position in ((256, 512), (6, 20), (32, 64)):
    relative = torch.arange(-2 * max_position, 2 * max_position + 1)
    ref = (
      modeling_deberta_v2.make_log_bucket_position(relative, buckets, max_position).long().numpy()
    )
    np.testing.assert_array_equal(log_bucket_position(relative.numpy(), buckets, max_position), ref)


def test_relative_table_uses_the_rows_hf_slices_for_v1():
  c = DebertaConfig(
    vocab_size=10, hidden_size=8, num_heads=2, relative_attention=True, max_relative_positions=8
  )
  first, index = relative_position_table(5, c)
  assert (
    first == 8 - 4 and index.max() == 8
  )  # rows 4..12 of 16, as HF's [8 - 5 : 8 + 5] slice reaches
  assert index[0, 0] == 4 and index[4, 0] == 8 and index[0, 4] == 0


def test_enhanced_mask_decoder_matches_hf_layers():
  """HF's DebertaModel never runs its z_steps branch (and it fails as shipped); run the branch's
  computation with HF's own v2 layers and compare."""
  hf = hf_classifier(2, V2_CONFIGS["v3-like"]).deberta
  sd = {k: v.numpy() for k, v in hf.state_dict().items()}
  arch = config_from_hf(hf.config.to_dict())
  params = convert_state_dict(arch, sd)["encoder"]
  ids, mask = padded_batch(99, [12, 7], cls_id=CLS, sep_id=SEP, seed=2)
  with torch.no_grad():
    t_ids, t_mask = torch_ids(ids, mask)
    layers = hf(input_ids=t_ids, attention_mask=t_mask, output_hidden_states=True).hidden_states
    enc = hf.encoder
    pairs = enc.get_attention_mask(t_mask)
    rel_pos, rel = enc.get_rel_pos(layers[0]), enc.get_rel_embedding()
    query, ref = layers[-1], []
    for _ in range(2):  # z_steps = 3
      query = enc.layer[-1](
        layers[-2], pairs, query_states=query, relative_pos=rel_pos, rel_embeddings=rel
      )[0]
      ref.append(query.numpy())

  encoder = DebertaEncoder(arch)

  def decode(m, ids, mask):
    states = m.encode(
      m.embed(m.embed_words(ids), mask, deterministic=True),
      mask,
      deterministic=True,
      all_layers=True,
    )
    return m.enhanced_mask_decoder(states[-2], states[-1], mask, z_steps=3)

  ours = jax.jit(
    lambda p: encoder.apply({"params": p}, jnp.asarray(ids), jnp.asarray(mask) > 0, method=decode)
  )(params)
  diffs = [max_abs_diff(o, r, mask) for o, r in zip(ours, ref)]
  print("DeBERTa EMD max abs diff:", diffs)
  assert len(ours) == 2 and max(diffs) < TOL


def test_word_mask_on_deberta():
  arch = DebertaConfig(
    vocab_size=40,
    hidden_size=16,
    num_layers=1,
    num_heads=2,
    intermediate_size=16,
    relative_attention=True,
    pos_att_type=("c2p", "p2c"),
    max_relative_positions=4,
    position_biased_input=False,
    hidden_dropout=0.0,
    attention_dropout=0.0,
  )
  model = DebertaClassifier(arch, 2, WordMask(hidden=8))
  ids, _ = padded_batch(40, [8, 5], cls_id=CLS, sep_id=SEP)

  def run(rng):
    p = model.init(rng, ids)["params"]
    return (
      p,
      model.apply({"params": p}, ids, deterministic=True),
      model.apply({"params": p}, ids, method=model.phi),
      model.apply({"params": p}, ids, deterministic=False, rngs={"mask": rng}),
    )

  params, inference, importance, training = jax.jit(run)(jax.random.PRNGKey(1))
  assert set(params) == {"encoder", "word_mask", "pooler", "classifier"}
  np.testing.assert_allclose(inference["phi"], importance, rtol=1e-6)
  np.testing.assert_array_equal(inference["token_mask"], (ids > 2))
  assert np.all(np.isfinite(training["logits"]))
  assert np.abs(np.asarray(training["logits"] - inference["logits"])).max() > 0
