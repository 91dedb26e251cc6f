"""PyTorch reference of the FLAT classifiers, for speed comparisons with flat_jax.

The authors' design (../shared/reference/authors-code.md), written from its facts, not from their
code, and without its defects: one softmax (no softmax inside forward), the mask entropy over real
tokens only, L_imp over the replaced positions only and differentiable, position ids unshifted.
Each model loads the weights of the matching Flax model (`build_pair`), so both compute the same
function; tests/benchmarks/test_reference_torch.py checks logits and loss to 1e-4.

  CNN / LSTM: frozen word embeddings -> word mask -> encoder -> Linear head
  BERT: Hugging Face BertModel's embedding layer -> word mask (real pieces only; a dropped piece
        also leaves attention in training) -> BertModel's layers -> pooler -> dropout -> Linear

Batches are the rows flat_jax trains on: numpy dicts with ids, label, weight, index and, in mode
flat, the adversarial twin (adv_ids, has_adv, replaced). A row's texts go through one forward pass
together, and outputs carry a text axis (B, T, ...) as in flat_jax.training.objectives.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DROP, KEEP = 0, 1
PAD_ID = 0


# ---- the variational word mask ----


class TorchWordMask(nn.Module):
  """Linear -> tanh -> Linear to [drop, keep] logits per token. Training multiplies by a hard
  straight-through Gumbel-softmax sample (temperature 1), inference by the keep-probability."""

  def __init__(self, embed_dim: int, hidden: int, temperature: float = 1.0):
    super().__init__()
    self.hidden_layer = nn.Linear(embed_dim, hidden)
    self.logit_layer = nn.Linear(hidden, 2)
    self.temperature = temperature

  def forward(self, embedded, sample=None):
    """Returns (keep-probabilities, mask values). `sample` (0/1, like the keep-probabilities) fixes
    the training sample, e.g. to the one flat_jax drew; its gradient then goes straight through
    the keep-probability (the Gumbel noise that produced it is unknown)."""
    logits = self.logit_layer(torch.tanh(self.hidden_layer(embedded)))
    phi = torch.softmax(logits, dim=-1)[..., KEEP]
    if not self.training:
      return phi, phi
    if sample is not None:
      return phi, sample - phi.detach() + phi
    return phi, F.gumbel_softmax(logits, tau=self.temperature, hard=True)[..., KEEP]


# ---- word-level models ----


class TorchCNN(nn.Module):
  """Kim CNN as flat_jax.models.cnn: the end zero-padded by k-1, ReLU, and only windows that start
  on a real token pooled (max over time), then dropout."""

  def __init__(self, embed_dim: int, kernel_sizes, num_filters: int, dropout: float):
    super().__init__()
    self.kernel_sizes = tuple(kernel_sizes)
    self.convs = nn.ModuleList(nn.Conv1d(embed_dim, num_filters, k) for k in self.kernel_sizes)
    self.dropout = nn.Dropout(dropout)
    self.out_dim = num_filters * len(self.kernel_sizes)

  def forward(self, embedded, token_mask):
    x = embedded.transpose(1, 2)  # (B, D, L)
    starts_on_token = token_mask[:, None, :].to(x.dtype)
    pooled = [
      (torch.relu(conv(F.pad(x, (0, k - 1)))) * starts_on_token).amax(dim=2)
      for k, conv in zip(self.kernel_sizes, self.convs)
    ]
    return self.dropout(torch.cat(pooled, dim=1))


class TorchLSTM(nn.Module):
  """One unidirectional layer; dropout on the input, tanh, max-pool over the real steps, tanh,
  dropout (flat_jax.models.lstm). Padding is trailing, so the real steps never see it."""

  def __init__(self, embed_dim: int, hidden: int, dropout: float):
    super().__init__()
    self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
    self.dropout = nn.Dropout(dropout)
    self.out_dim = hidden

  def forward(self, embedded, token_mask):
    outputs, _ = self.lstm(self.dropout(embedded))
    outputs = torch.tanh(outputs).masked_fill(~token_mask[..., None], float("-inf"))
    pooled = outputs.amax(dim=1)
    pooled = torch.where(torch.isfinite(pooled), pooled, torch.zeros_like(pooled))  # no tokens
    return self.dropout(torch.tanh(pooled))


class TorchWordClassifier(nn.Module):
  """Frozen embeddings (<pad> is the zero vector) -> optional word mask -> encoder -> head."""

  def __init__(
    self,
    encoder: nn.Module,
    vocab_size: int,
    embed_dim: int,
    num_classes: int,
    mask_hidden: int | None = None,
  ):
    super().__init__()
    self.embed = nn.Embedding(vocab_size, embed_dim)
    self.embed.weight.requires_grad_(False)
    self.encoder = encoder
    self.word_mask = TorchWordMask(embed_dim, mask_hidden) if mask_hidden else None
    self.head = nn.Linear(encoder.out_dim, num_classes)

  def forward(self, ids, mask_sample=None):
    token_mask = ids != PAD_ID
    return self.classify_embedded(self.embed(ids) * token_mask[..., None], token_mask, mask_sample)

  def classify_embedded(self, embedded, token_mask, mask_sample=None):
    """The forward pass from word embeddings (before the mask), as flat_jax's classify_embedded."""
    outputs = {"token_mask": token_mask}
    if self.word_mask is not None:
      phi, values = self.word_mask(embedded, mask_sample)
      embedded = embedded * values[..., None]
      outputs["phi"] = phi
    outputs["logits"] = self.head(self.encoder(embedded, token_mask))
    return outputs


# ---- BERT ----


class TorchBertClassifier(nn.Module):
  """Hugging Face BertModel with the word mask on the embedding-layer output. [CLS], [SEP] and
  padding always get the value 1 (flat_jax.models.bert's choice; the authors masked them too)."""

  def __init__(
    self,
    hf_config,
    num_classes: int,
    mask_hidden: int | None = None,
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int = 0,
  ):
    super().__init__()
    from transformers import BertModel

    self.bert = BertModel(hf_config, add_pooling_layer=True)
    self.word_mask = TorchWordMask(hf_config.hidden_size, mask_hidden) if mask_hidden else None
    self.dropout = nn.Dropout(
      hf_config.classifier_dropout
      if hf_config.classifier_dropout is not None
      else hf_config.hidden_dropout_prob
    )
    self.classifier = nn.Linear(hf_config.hidden_size, num_classes)
    self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, pad_id

  def forward(self, ids, mask_sample=None):
    attention = ids != self.pad_id
    token_mask = attention & (ids != self.cls_id) & (ids != self.sep_id)
    embedded = self.bert.embeddings(input_ids=ids)
    outputs = {"token_mask": token_mask}
    if self.word_mask is not None:
      phi, values = self.word_mask(embedded, mask_sample)
      values = torch.where(token_mask, values, torch.ones_like(values))
      embedded = embedded * values[..., None]
      if self.training:
        attention = attention & (values.detach() > 0.5)
      outputs["phi"] = phi
    extended = self.bert.get_extended_attention_mask(attention.long(), ids.shape)
    hidden = self.bert.encoder(embedded, attention_mask=extended).last_hidden_state
    outputs["logits"] = self.classifier(self.dropout(self.bert.pooler(hidden)))
    return outputs


def minilm_hf_config(vocab_size: int = 30522, **overrides):
  """A random MiniLM-size BERT (all-MiniLM-L6: 6 layers, hidden 384, 12 heads, intermediate 1536);
  nothing is downloaded."""
  from transformers import BertConfig as HFBertConfig

  fields = dict(
    vocab_size=vocab_size,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
  )
  fields.update(overrides)
  return HFBertConfig(**fields)


# ---- rows -> outputs -> loss ----


def row_outputs(model: nn.Module, batch: dict, mask_samples=None) -> dict:
  """One forward pass over every text of the rows; outputs get the text axis (B, T, ...).
  mask_samples: optional (B, T, L) 0/1 samples of the word mask."""
  texts = (
    torch.stack([batch["ids"], batch["adv_ids"]], 1)
    if "adv_ids" in batch
    else batch["ids"][:, None]
  )
  rows, per_row, length = texts.shape
  flat_samples = None if mask_samples is None else mask_samples.reshape(rows * per_row, length)
  outputs = model(texts.reshape(rows * per_row, length), flat_samples)
  return {k: v.reshape((rows, per_row) + v.shape[1:]) for k, v in outputs.items()}


def binary_entropy(p, eps: float = 1e-6):
  p = p.clamp(eps, 1.0 - eps)
  return -(p * torch.log(p) + (1.0 - p) * torch.log1p(-p))


def mask_entropy(phi, token_mask):
  """H(W | x) per text, summed over real tokens (the authors averaged over every padded position)."""
  return (binary_entropy(phi) * token_mask.to(phi.dtype)).sum(-1)


def objective_loss(mode: str, outputs: dict, batch: dict, beta: float = 0.1, gamma: float = 0.001):
  """The weighted mean over the rows of
    base: CE(x);  adv: CE(x) + [twin] CE(x');
    flat: CE(x) - beta H(x) + [twin] (CE(x') - beta H(x') + gamma sum_replaced |phi(x_i) - phi(x'_i)|).
  CE takes raw logits: one softmax, inside the loss."""
  logits, labels, weight = outputs["logits"], batch["label"], batch["weight"]
  loss = F.cross_entropy(logits[:, 0], labels, reduction="none")
  twin = batch["has_adv"].to(loss.dtype) if "has_adv" in batch else None
  if mode in ("adv", "flat") and twin is not None:
    loss = loss + twin * F.cross_entropy(logits[:, 1], labels, reduction="none")
  if mode == "flat":
    keep, token_mask = outputs["phi"], outputs["token_mask"]
    entropy = mask_entropy(keep[:, 0], token_mask[:, 0])
    if twin is not None:
      entropy = entropy + twin * mask_entropy(keep[:, 1], token_mask[:, 1])
      replaced = batch["replaced"].to(keep.dtype)
      loss = loss + gamma * twin * ((keep[:, 0] - keep[:, 1]).abs() * replaced).sum(-1)
    loss = loss - beta * entropy
  return (loss * weight).sum() / weight.sum()


def torch_batch(batch: dict) -> dict:
  """numpy rows -> tensors (ids int64, flags bool, weights float32)."""
  out = {}
  for key, value in batch.items():
    value = np.asarray(value)
    if key in ("has_adv", "replaced"):
      out[key] = torch.from_numpy(value.astype(bool))
    elif np.issubdtype(value.dtype, np.integer):
      out[key] = torch.from_numpy(value.astype(np.int64))
    else:
      out[key] = torch.from_numpy(value.astype(np.float32))
  return out


# ---- weights: Flax params -> torch modules ----


def _set(tensor: torch.Tensor, array) -> None:
  array = np.array(array, np.float32)  # a writable copy: torch refuses read-only buffers
  if tuple(tensor.shape) != array.shape:
    raise ValueError(f"shape {array.shape} does not fit the torch parameter {tuple(tensor.shape)}")
  with torch.no_grad():
    tensor.copy_(torch.from_numpy(np.ascontiguousarray(array)))


def _load_dense(linear: nn.Linear, params) -> None:
  _set(linear.weight, np.asarray(params["kernel"]).T)  # Flax (in, out), torch (out, in)
  _set(linear.bias, params["bias"])


def _load_mask(mask: TorchWordMask | None, params) -> None:
  if mask is not None:
    _load_dense(mask.hidden_layer, params["word_mask"]["hidden_layer"])
    _load_dense(mask.logit_layer, params["word_mask"]["logit_layer"])


def _load_lstm(lstm: nn.LSTM, cell) -> None:
  """Flax OptimizedLSTMCell: input kernels i{i,f,g,o} (no bias), hidden kernels and biases
  h{i,f,g,o}; torch stacks the gates in the same order i, f, g, o."""
  gates = "ifgo"
  _set(lstm.weight_ih_l0, np.concatenate([np.asarray(cell["i" + g]["kernel"]) for g in gates], 1).T)
  _set(lstm.weight_hh_l0, np.concatenate([np.asarray(cell["h" + g]["kernel"]) for g in gates], 1).T)
  _set(lstm.bias_hh_l0, np.concatenate([np.asarray(cell["h" + g]["bias"]) for g in gates]))
  _set(lstm.bias_ih_l0, np.zeros(lstm.bias_ih_l0.shape, np.float32))


def load_word_params(model: TorchWordClassifier, params) -> TorchWordClassifier:
  """flat_jax WordClassifier params -> the torch model."""
  _set(model.embed.weight, params["embed"]["embedding"])
  encoder = params["encoder"]
  if isinstance(model.encoder, TorchCNN):
    for k, conv in zip(model.encoder.kernel_sizes, model.encoder.convs):
      _set(
        conv.weight, np.transpose(np.asarray(encoder[f"conv_{k}"]["kernel"]), (2, 1, 0))
      )  # (k,in,out)
      _set(conv.bias, encoder[f"conv_{k}"]["bias"])
  else:
    (cell,) = encoder.values()
    _load_lstm(model.encoder.lstm, cell)
  _load_dense(model.head, params["head"])
  _load_mask(model.word_mask, params)
  return model


def bert_state_dict(arch, params) -> dict[str, torch.Tensor]:
  """Our Flax BERT classifier params -> a BertModel state dict (names without the 'bert.' prefix),
  by flat_jax.models.checkpoints_hf's own name map run backwards. Each map entry converts by a
  transpose (dense kernels) or not at all, and both are their own inverse."""
  from flat_jax.models import checkpoints_hf as hf

  flat = hf._flatten(params["encoder"])
  state = {}
  for entry in hf.bert_entries(arch) + hf.bert_optional_entries(arch):
    array = np.asarray(flat[entry.path])
    converted = entry.convert(array)
    if tuple(converted.shape) != tuple(entry.hf_shape(array.shape)):
      raise ValueError(f"{entry.name}: the name map's conversion is not a transpose or identity")
    state[entry.name] = torch.from_numpy(np.array(converted, np.float32))  # writable, contiguous
  return state


def load_bert_params(model: TorchBertClassifier, arch, params) -> TorchBertClassifier:
  missing, unexpected = model.bert.load_state_dict(bert_state_dict(arch, params), strict=False)
  missing = [
    m for m in missing if not m.endswith("position_ids") and not m.endswith("token_type_ids")
  ]
  if missing or unexpected:
    raise ValueError(f"BERT weights do not fit: missing {missing}, unexpected {unexpected}")
  _load_dense(model.classifier, params["classifier"])
  _load_mask(model.word_mask, params)
  return model


# ---- the same model on both sides ----


@dataclasses.dataclass
class Pair:
  """A flat_jax model and its torch twin holding the same weights."""

  name: str
  flax_model: object
  params: dict
  torch_model: nn.Module | None
  arch: object = None  # flat_jax BertConfig for BERT

  def apply_fn(self, params, texts, deterministic, rngs, perturbation=None):
    """The train and eval steps' apply_fn (flat_jax.training.step.model_apply_fn)."""
    from flat_jax.training.step import model_apply_fn

    return model_apply_fn(self.flax_model)(params, texts, deterministic, rngs, perturbation)


def build_pair(
  name: str,
  mode: str,
  *,
  vocab_size: int,
  num_classes: int = 2,
  embed_dim: int = 300,
  seed: int = 0,
  dropout: float | None = None,
  bert_overrides: dict | None = None,
  embedding: np.ndarray | None = None,
  with_torch: bool = True,
) -> Pair:
  """name: cnn | lstm | bert; with a word mask in mode flat. The Flax model is initialised with
  `seed` (CNN/LSTM get `embedding`, or a random table with a zero <pad> row) and the torch model
  takes its weights (with_torch=False: no torch model, for JAX-only uses). dropout=None keeps the
  presets' rates; 0 turns every dropout off."""
  import jax
  import jax.numpy as jnp
  from flat_jax.config import preset

  with_mask = mode == "flat"
  model_config = preset("sst2", name).model
  rng = jax.random.PRNGKey(seed)
  ids = jnp.full((1, 8), 1, jnp.int32)
  if name in ("cnn", "lstm"):
    from flat_jax.models.classifier import build_word_classifier, with_embedding

    if dropout is not None:
      model_config.dropout = dropout
    flax_model = build_word_classifier(
      model_config, vocab_size, num_classes, embed_dim, with_mask=with_mask
    )
    params = jax.jit(lambda r: flax_model.init(r, ids, deterministic=True))(rng)[
      "params"
    ]  # one compile
    if embedding is None:
      embedding = (
        np.random.default_rng(seed).uniform(-0.25, 0.25, (vocab_size, embed_dim)).astype(np.float32)
      )
      embedding[PAD_ID] = 0.0
    params = with_embedding(params, embedding)
    if not with_torch:
      return Pair(name, flax_model, params, None)
    encoder = (
      TorchCNN(
        embed_dim, model_config.cnn_kernel_sizes, model_config.cnn_num_filters, model_config.dropout
      )
      if name == "cnn"
      else TorchLSTM(embed_dim, model_config.lstm_hidden, model_config.dropout)
    )
    torch_model = TorchWordClassifier(
      encoder, vocab_size, embed_dim, num_classes, model_config.mask_hidden if with_mask else None
    )
    return Pair(name, flax_model, params, load_word_params(torch_model, params))
  if name != "bert":
    raise ValueError(f"unknown model {name!r}: cnn, lstm or bert")
  from flat_jax.models.bert import BertClassifier, BertConfig
  from flat_jax.models.word_mask import WordMask

  overrides = dict(bert_overrides or {})
  if dropout is not None:
    overrides.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
  hf_config = minilm_hf_config(vocab_size, **overrides)
  special = dict(cls_id=min(101, vocab_size - 2), sep_id=min(102, vocab_size - 1))
  arch = BertConfig.from_hf(hf_config.to_dict(), **special)
  mask = WordMask(model_config.mask_hidden, model_config.mask_temperature) if with_mask else None
  flax_model = BertClassifier(arch, num_classes, mask)
  params = jax.jit(lambda r: flax_model.init({"params": r}, ids, deterministic=True))(rng)["params"]
  params = _perturbed(params, seed)
  if not with_torch:
    return Pair(name, flax_model, params, None, arch)
  torch_model = TorchBertClassifier(
    hf_config,
    num_classes,
    model_config.mask_hidden if with_mask else None,
    **special,
    pad_id=arch.pad_id,
  )
  return Pair(name, flax_model, params, load_bert_params(torch_model, arch, params), arch)


def _perturbed(params, seed: int, scale: float = 0.02):
  """Fresh init sets biases to 0 and LayerNorms to (1, 0), which would hide a wrongly mapped bias
  or norm: add noise to every parameter."""
  import jax

  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda a: a + rng.normal(0, scale, a.shape).astype(np.float32), params)
