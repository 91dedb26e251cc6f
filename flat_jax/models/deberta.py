"""DeBERTa (v1, and v2/v3) in Flax linen with FLAT's variational word mask.

`DebertaEncoder` computes what Hugging Face's PyTorch `DebertaModel` (version=1) and
`DebertaV2Model` (version=2, which also runs DeBERTa-v3 checkpoints) compute; `DebertaClassifier`
adds the head of `DebertaForSequenceClassification`: ContextPooler (dense on [CLS] -> activation)
-> dropout -> Dense. One module carries both versions; the differences are config fields:

  v1: fused q/k/v projection with separate q and v biases (imported as query/key/value, the key
      without bias), optional talking heads, position-key projection without bias.
  v2: separate biased projections, log-bucketed relative positions (position_buckets), the
      relative embeddings optionally LayerNormed (norm_rel_ebd) and shared with the content
      projections (share_att_key), a convolution beside the first layer (conv_kernel_size).

Disentangled attention: score(i, j) = q_i.k_j + q_i.Pk[d(i, j)] (c2p) + k_j.Pq[d(i, j)] (p2c), all
divided by sqrt(head_dim * (1 + number of relative terms)), where d(i, j) is the (bucketed)
relative distance i - j shifted into the embedding table and clipped to it. For a static length the
table of d is a numpy constant; only the rows it reaches are projected (for v1 this is the slice
HF takes around the table's centre).

The enhanced mask decoder (EMD): HF's DebertaModel keeps `z_steps = 0`, so its forward never runs
it, and its z_steps > 1 branch fails as shipped in transformers 4.57 (v1: `.t()` of a 3-D tensor in
the query_states projection; both: `.append` on a tuple). `DebertaEncoder.enhanced_mask_decoder`
runs that branch as it is written (the last layer again, queries from the previous step, keys and
values from the second-to-last layer's output); the single-layer query_states path it rests on
matches HF's v2 layer. It is for masked-LM heads; the classifiers never use it.

The word mask is applied exactly as in bert.py (see its module docstring).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flat_jax.models.bert import (
  activation,
  dense,
  layer_norm,
  BertClassifier,
  padding_attention_mask,
  masked_layers,
)
from flat_jax.models.dropout import Dropout
from flat_jax.models.word_mask import WordMask

POSITION_ATTENTION_TYPES = ("c2p", "p2c")


@dataclasses.dataclass(frozen=True)
class DebertaConfig:
  vocab_size: int
  version: int = 1  # 1: modeling_deberta; 2: modeling_deberta_v2 (v2 and v3)
  hidden_size: int = 768
  num_layers: int = 12
  num_heads: int = 12
  intermediate_size: int = 3072
  max_position: int = 512
  type_vocab_size: int = 0
  layer_norm_eps: float = 1e-7
  hidden_act: str = "gelu"
  hidden_dropout: float = 0.1
  attention_dropout: float = 0.1
  initializer_range: float = 0.02
  embedding_size: int | None = None  # None: hidden_size; else projected to it (no bias)
  position_biased_input: bool = True  # absolute position embeddings added to the input
  relative_attention: bool = False
  max_relative_positions: int = -1  # < 1: max_position
  pos_att_type: tuple[str, ...] = ()  # subset of ("c2p", "p2c")
  position_buckets: int = -1  # v2: log buckets when > 0
  share_att_key: bool = False  # v2
  norm_rel_ebd: bool = False  # v2: LayerNorm on the relative embeddings
  conv_kernel_size: int = 0  # v2: convolution beside the first layer when > 0
  conv_groups: int = 1
  conv_act: str = "tanh"
  talking_head: bool = False  # v1
  attention_head_size: int | None = None  # v2; None: hidden_size // num_heads
  pooler_hidden_size: int | None = None  # None: hidden_size
  pooler_hidden_act: str = "gelu"
  pooler_dropout: float = 0.0
  cls_dropout: float | None = None  # None: hidden_dropout, as in HF
  pad_id: int = 0
  cls_id: int = 1  # [CLS] / [SEP] of the DeBERTa vocabularies (v1 GPT-2 BPE and v2/v3 spm)
  sep_id: int = 2

  def __post_init__(self):
    if self.version not in (1, 2):
      raise ValueError(f"DeBERTa version must be 1 or 2, got {self.version}")
    bad = [t for t in self.pos_att_type if t not in POSITION_ATTENTION_TYPES]
    if bad:
      raise ValueError(
        f"unsupported pos_att_type {bad}; supported: {', '.join(POSITION_ATTENTION_TYPES)}"
      )
    if self.attention_head_size is None and self.hidden_size % self.num_heads:
      raise ValueError(
        f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}"
      )
    if self.version == 1 and (
      self.position_buckets > 0
      or self.share_att_key
      or self.norm_rel_ebd
      or self.conv_kernel_size > 0
      or self.attention_head_size is not None
    ):
      raise ValueError(
        "position_buckets, share_att_key, norm_rel_ebd, conv_kernel_size and "
        "attention_head_size are DeBERTa-v2 settings: use version=2"
      )
    if self.version == 2 and self.talking_head:
      raise ValueError("talking_head exists only in DeBERTa v1")
    if self.conv_kernel_size > 0 and self.conv_kernel_size % 2 == 0:
      raise ValueError(f"conv_kernel_size must be odd, got {self.conv_kernel_size}")
    for name in (self.hidden_act, self.pooler_hidden_act, self.conv_act):
      activation(name)

  @property
  def head_dim(self) -> int:
    return self.attention_head_size or self.hidden_size // self.num_heads

  @property
  def relative_span(self) -> int:
    """Half the number of relative embeddings ("att_span" / "pos_ebd_size" in HF)."""
    if self.position_buckets > 0:
      return self.position_buckets
    return self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position

  @property
  def max_relative_distance(self) -> int:
    return self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position

  @classmethod
  def from_hf(cls, hf_config: Mapping[str, Any], **overrides) -> "DebertaConfig":
    """From a Hugging Face DebertaConfig / DebertaV2Config dict (config.json); the version follows
    its model_type ("deberta" -> 1, "deberta-v2" -> 2) unless `overrides` set it."""
    model_type = str(hf_config.get("model_type", "deberta")).replace("_", "-")
    version = overrides.pop("version", 2 if model_type == "deberta-v2" else 1)
    pos_att_type = hf_config.get("pos_att_type") or ()
    if isinstance(pos_att_type, str):
      pos_att_type = [t.strip() for t in pos_att_type.lower().split("|") if t.strip()]
    norm_rel_ebd = [
      t.strip() for t in str(hf_config.get("norm_rel_ebd", "none")).lower().split("|")
    ]
    hidden = hf_config.get("hidden_size", 768)
    get = hf_config.get
    fields = dict(
      vocab_size=hf_config["vocab_size"],
      version=version,
      hidden_size=hidden,
      num_layers=get("num_hidden_layers", 12),
      num_heads=get("num_attention_heads", 12),
      intermediate_size=get("intermediate_size", 3072),
      max_position=get("max_position_embeddings", 512),
      type_vocab_size=get("type_vocab_size", 0),
      layer_norm_eps=get("layer_norm_eps", 1e-7),
      hidden_act=get("hidden_act", "gelu"),
      hidden_dropout=get("hidden_dropout_prob", 0.1),
      attention_dropout=get("attention_probs_dropout_prob", 0.1),
      initializer_range=get("initializer_range", 0.02),
      embedding_size=get("embedding_size") if get("embedding_size") not in (None, hidden) else None,
      position_biased_input=get("position_biased_input", True),
      relative_attention=get("relative_attention", False),
      max_relative_positions=get("max_relative_positions", -1),
      pos_att_type=tuple(pos_att_type),
      pooler_hidden_size=get("pooler_hidden_size")
      if get("pooler_hidden_size") not in (None, hidden)
      else None,
      pooler_hidden_act=get("pooler_hidden_act", "gelu"),
      pooler_dropout=get("pooler_dropout", 0.0),
      cls_dropout=get("cls_dropout"),
      pad_id=get("pad_token_id") if get("pad_token_id") is not None else 0,
    )
    if version == 2:
      fields.update(
        position_buckets=get("position_buckets", -1),
        share_att_key=get("share_att_key", False),
        norm_rel_ebd="layer_norm" in norm_rel_ebd,
        conv_kernel_size=get("conv_kernel_size", 0),
        conv_groups=get("conv_groups", 1),
        conv_act=get("conv_act", "tanh"),
        attention_head_size=get("attention_head_size"),
      )
    else:
      fields.update(talking_head=get("talking_head", False))
    fields.update(overrides)
    return cls(**fields)


def log_bucket_position(relative, bucket_size: int, max_position: int) -> np.ndarray:
  """DeBERTa-v2's log buckets: distances under bucket_size / 2 stay exact, longer ones share
  logarithmically wider buckets up to max_position. Computed in float32 as HF does, so the
  ceil lands on the same side."""
  relative = np.asarray(relative)
  mid = bucket_size // 2
  sign = np.sign(relative)
  abs_pos = np.where((relative < mid) & (relative > -mid), mid - 1, np.abs(relative)).astype(
    np.float32
  )
  scale = np.log(np.float32((max_position - 1) / mid))
  log_pos = np.ceil(np.log(abs_pos / np.float32(mid)) / scale * np.float32(mid - 1)) + mid
  return np.where(abs_pos <= mid, relative, log_pos * sign).astype(np.int64)


def relative_position_table(length: int, config: DebertaConfig) -> tuple[int, np.ndarray]:
  """For a sequence of `length`: (first relative-embedding row used, (length, length) row index
  of every query-key pair relative to it). The same index serves c2p and p2c."""
  relative = np.arange(length)[:, None] - np.arange(length)[None, :]
  if config.position_buckets > 0:
    relative = log_bucket_position(relative, config.position_buckets, config.max_relative_distance)
  span = config.relative_span
  index = np.clip(relative + span, 0, 2 * span - 1)
  first = int(index.min())
  return first, (index - first).astype(np.int32)


class DisentangledSelfAttention(nn.Module):
  config: DebertaConfig

  @nn.compact
  def __call__(
    self,
    hidden,
    attention_mask,
    rel_embeddings,
    rel_index,
    *,
    deterministic: bool,
    query_states=None,
  ):
    """hidden: (B, L, H) keys and values (and queries unless query_states is given);
    attention_mask: (B, 1, L, L) bool; rel_embeddings: (R, H) the rows rel_index (L, L) points at."""
    c = self.config
    init = c.initializer_range
    inner = c.num_heads * c.head_dim
    split = lambda x: x.reshape(x.shape[:-1] + (c.num_heads, c.head_dim))
    query_proj = dense(inner, init, name="query")
    key_proj = dense(inner, init, use_bias=c.version >= 2, name="key")
    if query_states is None:
      query_states = hidden
    q = split(query_proj(query_states))
    k = split(key_proj(hidden))
    v = split(dense(inner, init, name="value")(hidden))

    scale = np.sqrt(np.float32(c.head_dim * (1 + len(c.pos_att_type)))).astype(np.float32)
    q = q / scale
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k)
    if c.relative_attention and c.pos_att_type:
      rel = Dropout(c.hidden_dropout)(rel_embeddings, deterministic=deterministic)
      length = hidden.shape[1]
      rows = np.arange(length)
      if "c2p" in c.pos_att_type:
        pos_key = (
          key_proj
          if c.share_att_key
          else dense(inner, init, use_bias=c.version >= 2, name="pos_key")
        )
        c2p = jnp.einsum("bqhd,rhd->bhqr", q, split(pos_key(rel)))
        scores = scores + c2p[:, :, rows[:, None], rel_index]  # [i, j] -> row d(i, j)
      if "p2c" in c.pos_att_type:
        pos_query = query_proj if c.share_att_key else dense(inner, init, name="pos_query")
        p2c = jnp.einsum("bkhd,rhd->bhkr", k, split(pos_query(rel)) / scale)
        scores = scores + p2c[:, :, rows[None, :], rel_index]  # [i, j] -> key j, row d(i, j)
    if c.talking_head:
      scores = _mix_heads(scores, "head_logits", init)
    scores = jnp.where(attention_mask, scores, jnp.finfo(scores.dtype).min)
    probs = Dropout(c.attention_dropout)(
      jax.nn.softmax(scores, axis=-1), deterministic=deterministic
    )
    if c.talking_head:
      probs = _mix_heads(probs, "head_weights", init)
    context = jnp.einsum("bhqk,bkhd->bqhd", probs, v)
    return context.reshape(context.shape[:2] + (inner,))


def _mix_heads(x, name, init):
  """Talking heads: a linear map across the head axis of (B, heads, Q, K)."""
  mixed = dense(x.shape[1], init, use_bias=False, name=name)(jnp.moveaxis(x, 1, -1))
  return jnp.moveaxis(mixed, -1, 1)


class DebertaLayer(nn.Module):
  config: DebertaConfig

  @nn.compact
  def __call__(
    self,
    hidden,
    attention_mask,
    rel_embeddings,
    rel_index,
    *,
    deterministic: bool,
    query_states=None,
  ):
    c = self.config
    drop = lambda x: Dropout(c.hidden_dropout)(x, deterministic=deterministic)
    attended = DisentangledSelfAttention(c, name="attention")(
      hidden,
      attention_mask,
      rel_embeddings,
      rel_index,
      deterministic=deterministic,
      query_states=query_states,
    )
    residual = hidden if query_states is None else query_states
    attended = drop(dense(c.hidden_size, c.initializer_range, name="attention_output")(attended))
    hidden = layer_norm(c.layer_norm_eps, name="attention_norm")(residual + attended)
    inner = activation(c.hidden_act)(
      dense(c.intermediate_size, c.initializer_range, name="intermediate")(hidden)
    )
    out = drop(dense(c.hidden_size, c.initializer_range, name="output")(inner))
    return layer_norm(c.layer_norm_eps, name="output_norm")(hidden + out)


class ConvLayer(nn.Module):
  """DeBERTa-v2's convolution over the embedding-layer output, added to the first layer's output."""

  config: DebertaConfig

  @nn.compact
  def __call__(self, embedded, layer_output, token_mask, *, deterministic: bool):
    c = self.config
    pad = (c.conv_kernel_size - 1) // 2
    out = nn.Conv(
      c.hidden_size,
      (c.conv_kernel_size,),
      padding=[(pad, pad)],
      feature_group_count=c.conv_groups,
      name="conv",
      kernel_init=nn.initializers.normal(c.initializer_range),
    )(embedded)
    out = jnp.where(token_mask[..., None], out, 0.0)
    out = activation(c.conv_act)(Dropout(c.hidden_dropout)(out, deterministic=deterministic))
    out = layer_norm(c.layer_norm_eps, name="norm")(layer_output + out)
    return out * token_mask[..., None].astype(out.dtype)


class DebertaEmbeddings(nn.Module):
  config: DebertaConfig

  def setup(self):
    c = self.config
    init = nn.initializers.normal(c.initializer_range)
    size = c.embedding_size or c.hidden_size
    self.word_embeddings = nn.Embed(c.vocab_size, size, embedding_init=init)
    if c.position_biased_input:
      self.position_embeddings = nn.Embed(c.max_position, size, embedding_init=init)
    if c.type_vocab_size > 0:
      self.token_type_embeddings = nn.Embed(c.type_vocab_size, size, embedding_init=init)
    if size != c.hidden_size:
      self.embed_proj = dense(c.hidden_size, c.initializer_range, use_bias=False)
    self.layer_norm = layer_norm(c.layer_norm_eps)
    self.dropout = Dropout(c.hidden_dropout)

  def embed_words(self, ids):
    return self.word_embeddings(ids)

  def __call__(self, word_embedded, attention_mask, token_type_ids=None, *, deterministic: bool):
    c = self.config
    x = word_embedded
    if c.position_biased_input:
      x = x + self.position_embeddings(jnp.arange(x.shape[1]))[None]
    if c.type_vocab_size > 0:
      if token_type_ids is None:
        token_type_ids = jnp.zeros(x.shape[:2], jnp.int32)
      x = x + self.token_type_embeddings(token_type_ids)
    if (c.embedding_size or c.hidden_size) != c.hidden_size:
      x = self.embed_proj(x)
    x = self.layer_norm(x) * attention_mask[..., None].astype(x.dtype)
    return self.dropout(x, deterministic=deterministic)


class DebertaEncoder(nn.Module):
  """HF DebertaModel / DebertaV2Model in the steps the word mask needs:
  embed_words -> embed (the embedding-layer output) -> encode (the layers)."""

  config: DebertaConfig

  def setup(self):
    c = self.config
    self.embeddings = DebertaEmbeddings(c)
    self.layers = [DebertaLayer(c) for _ in range(c.num_layers)]
    if c.relative_attention:
      self.rel_embeddings = nn.Embed(
        2 * c.relative_span,
        c.hidden_size,
        embedding_init=nn.initializers.normal(c.initializer_range),
      )
      if c.norm_rel_ebd:
        self.rel_norm = layer_norm(c.layer_norm_eps)
    if c.conv_kernel_size > 0:
      self.conv = ConvLayer(c)

  def embed_words(self, ids):
    return self.embeddings.embed_words(ids)

  def embed(self, word_embedded, attention_mask, token_type_ids=None, *, deterministic: bool):
    """The embedding-layer output; padding rows are zeroed, as HF does."""
    return self.embeddings(
      word_embedded, attention_mask, token_type_ids, deterministic=deterministic
    )

  def _relative(self, length):
    if not self.config.relative_attention:
      return None, None
    first, index = relative_position_table(length, self.config)
    rel = self.rel_embeddings(jnp.arange(first, first + int(index.max()) + 1))
    if self.config.norm_rel_ebd:
      rel = self.rel_norm(rel)
    return rel, index

  @staticmethod
  def _pair_mask(attention_mask):
    # HF: a pair attends only when both the query and the key are real
    return attention_mask[:, None, :, None] & attention_mask[:, None, None, :]

  def encode(self, embedded, attention_mask, *, deterministic: bool, all_layers: bool = False):
    """The layers over the embedding-layer output; attention_mask (B, L) bool. Returns the last
    hidden states, or with all_layers the list [embedded, layer 1, ..., layer N]."""
    attention_mask = attention_mask.astype(bool)
    pairs = self._pair_mask(attention_mask)
    rel, index = self._relative(embedded.shape[1])
    states = [embedded]
    for i, layer in enumerate(self.layers):
      out = layer(states[-1], pairs, rel, index, deterministic=deterministic)
      if i == 0 and self.config.conv_kernel_size > 0:
        out = self.conv(embedded, out, attention_mask, deterministic=deterministic)
      states.append(out)
    return states if all_layers else states[-1]

  def enhanced_mask_decoder(
    self,
    hidden_states,
    query_states,
    attention_mask,
    *,
    z_steps: int = 2,
    deterministic: bool = True,
  ):
    """HF's z_steps branch: z_steps - 1 more passes of the last layer, keys and values from
    `hidden_states` (the second-to-last layer's output), queries from the previous pass (first:
    `query_states`, the last layer's output). Returns every pass's output."""
    attention_mask = attention_mask.astype(bool)
    pairs = self._pair_mask(attention_mask)
    rel, index = self._relative(hidden_states.shape[1])
    outputs = []
    for _ in range(z_steps - 1):
      query_states = self.layers[-1](
        hidden_states, pairs, rel, index, deterministic=deterministic, query_states=query_states
      )
      outputs.append(query_states)
    return outputs

  def __call__(self, ids, attention_mask=None, token_type_ids=None, *, deterministic: bool = True):
    """Last hidden states (B, L, H). The attention mask defaults to ids != pad_id."""
    attention_mask = padding_attention_mask(ids, attention_mask, self.config.pad_id)
    embedded = self.embed(
      self.embed_words(ids), attention_mask, token_type_ids, deterministic=deterministic
    )
    return self.encode(embedded, attention_mask, deterministic=deterministic)


class DebertaClassifier(BertClassifier):
  """HF DebertaForSequenceClassification (and DebertaV2...) with an optional word mask.

  BertClassifier's forward pass, mask and phi over DeBERTa's encoder; its own pooler head and IG
  input space. Outputs {"logits" (B, C), "token_mask" (B, L) real pieces, "phi" (B, L) with a
  mask}."""

  config: DebertaConfig
  num_classes: int
  word_mask: WordMask | None = None

  def setup(self):
    c = self.config
    self.encoder = DebertaEncoder(c)
    self.pooler = dense(c.pooler_hidden_size or c.hidden_size, c.initializer_range)
    self.pooler_dropout = Dropout(c.pooler_dropout)
    self.dropout = Dropout(c.hidden_dropout if c.cls_dropout is None else c.cls_dropout)
    self.classifier = dense(self.num_classes, c.initializer_range)

  def _head(self, hidden, outputs, deterministic: bool):
    context = self.pooler_dropout(hidden[:, 0], deterministic=deterministic)
    pooled = activation(self.config.pooler_hidden_act)(self.pooler(context))
    outputs["logits"] = self.classifier(self.dropout(pooled, deterministic=deterministic))
    return outputs

  def ig_inputs(self, ids):
    """The input space of Integrated Gradients: the embedding-layer output (before the mask).
    Without absolute positions in the input (deberta-base), the word embeddings go straight into
    the embedding LayerNorm, which maps every point alpha * x of a path from zero to the same
    vector: IG on the word embeddings would put all the change in an infinitesimal first step."""
    return self.encoder.embed(self.embed_tokens(ids), ids != self.config.pad_id, deterministic=True)

  def classify_ig_inputs(self, inputs, ids):
    hidden, outputs = masked_layers(self.encoder, self.word_mask, inputs, ids, deterministic=True)
    return self._head(hidden, outputs, True)
