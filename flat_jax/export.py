"""Export a trained BERT or DeBERTa run as a Hugging Face checkpoint.

  python -m flat_jax.export WORKDIR OUT [--stage STAGE]

OUT gets config.json (BertForSequenceClassification / Deberta(V2)ForSequenceClassification with the
run's label names), model.safetensors, the tokenizer, and flat_jax_export.json (where it came from,
what was left out, and the check below). Load it with
transformers.AutoModelForSequenceClassification.from_pretrained(OUT).

FLAT's word mask is left out: it multiplies the embedding-layer output (word + position + type
embeddings after LayerNorm) by a keep-probability computed from that same output, so it depends on
the position and cannot be folded into any Hugging Face weight. The exported model is the run's
classifier without it, and the export checks that: the PyTorch logits of a few texts against the
Flax model's with the mask removed (max |difference| in flat_jax_export.json and the log).
LSTM and CNN runs have no Hugging Face counterpart.
"""

from __future__ import annotations

import json
import logging
import pathlib
import sys

import jax
import numpy as np
from absl import app, flags

from flat_jax.data.datasets import known_label_names
from flat_jax.models import transformer
from flat_jax.models.checkpoints_hf import config_to_hf, export_state_dict
from flat_jax.training.artifacts import final_stage, load_trained

CHECK_TEXTS = (
  "a gripping , funny film with a weak ending",
  "what is the capital of peru ?",
  "the service was slow and the food was cold",
  "who wrote hamlet ?",
)


class ExportError(ValueError):
  """A workdir that cannot be exported; the message says why."""


def export(workdir, out, stage: str | None = None, check_texts=CHECK_TEXTS) -> dict:
  """Writes the Hugging Face checkpoint of `workdir`'s model (its final stage by default) to `out`;
  returns what flat_jax_export.json holds."""
  workdir, out = pathlib.Path(workdir), pathlib.Path(out)
  stage = stage or final_stage(workdir)
  trained = load_trained(workdir, stage)
  if not hasattr(trained.text, "tokenizer"):
    raise ExportError(
      f"{workdir}: a {trained.config.model.name} model has no Hugging Face "
      f"counterpart; export is for BERT and DeBERTa runs"
    )
  arch = transformer.load_architecture(workdir)
  names = known_label_names(trained.config.data)
  out.mkdir(parents=True, exist_ok=True)
  from safetensors.numpy import save_file

  save_file(
    export_state_dict(arch, trained.params),
    str(out / "model.safetensors"),
    metadata={"format": "pt"},
  )
  (out / "config.json").write_text(
    json.dumps(config_to_hf(arch, trained.num_classes, names), indent=2)
  )
  trained.text.tokenizer.save_pretrained(str(out))
  with_mask = "word_mask" in trained.params
  summary = {
    "source": str(workdir),
    "stage": stage,
    "model": trained.config.model.name,
    "mode": trained.config.mode,
    "num_classes": trained.num_classes,
    "word_mask": "left out (position-dependent; no Hugging Face weight can hold it)"
    if with_mask
    else "none",
    "check": _check(trained, arch, out, check_texts),
  }
  (out / "flat_jax_export.json").write_text(json.dumps(summary, indent=2))
  if with_mask:
    logging.warning(
      "%s: the word mask is left out of the export; the Hugging Face model is the "
      "classifier without it (flat_jax_export.json)",
      workdir,
    )
  logging.info(
    "exported %s (%s) to %s: PyTorch vs Flax logits max |diff| %.2e on %d texts",
    workdir,
    stage,
    out,
    summary["check"]["max_abs_logit_diff"],
    summary["check"]["num_texts"],
  )
  return summary


def _check(trained, arch, out: pathlib.Path, texts) -> dict:
  """PyTorch logits of the export against the Flax classifier's without the word mask."""
  import torch
  from transformers import AutoModelForSequenceClassification

  plain = transformer.build(arch, trained.num_classes, trained.config.model, with_mask=False)
  params = {k: v for k, v in trained.params.items() if k != "word_mask"}
  ids, _ = trained.text.encode_batch(list(texts))
  ours = np.asarray(
    plain.apply({"params": params}, jax.numpy.asarray(ids), deterministic=True)["logits"]
  )
  model = AutoModelForSequenceClassification.from_pretrained(str(out), local_files_only=True).eval()
  with torch.no_grad():
    theirs = model(
      input_ids=torch.as_tensor(ids, dtype=torch.long),
      attention_mask=torch.as_tensor(ids != trained.text.pad_id, dtype=torch.long),
    ).logits.numpy()
  return {
    "num_texts": len(texts),
    "max_abs_logit_diff": float(np.abs(ours - theirs).max()),
    "same_predictions": bool((ours.argmax(-1) == theirs.argmax(-1)).all()),
  }


FLAGS = flags.FLAGS
flags.DEFINE_string("stage", None, "Training stage to export (default: the run's final model).")


def main(argv):
  if len(argv) != 3:
    raise app.UsageError("usage: python -m flat_jax.export WORKDIR OUT [--stage STAGE]")
  try:
    export(argv[1], argv[2], FLAGS.stage)
  except (ExportError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
