"""TensorBoard events beside metrics.jsonl: one global step across stages, continued after a resume."""

import json
import struct

from tensorboardX.proto import event_pb2

from flat_jax.training.loop import MetricsWriter


def _events(folder):
  """(tag, step, value) of every scalar in the TFRecord event files under `folder`."""
  out = []
  for path in sorted(folder.glob("events.out.tfevents.*")):
    data = path.read_bytes()
    at = 0
    while at < len(data):
      (length,) = struct.unpack("<Q", data[at : at + 8])
      event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
      at += 12 + length + 4
      out += [
        (v.tag, event.step, v.simple_value)
        for v in event.summary.value
        if v.HasField("simple_value")
      ]
  return out


def _line(stage, epoch, step, loss):
  return {
    "stage": stage,
    "epoch": epoch,
    "step": step,
    "train_loss": loss,
    "dev_accuracy": 50.0 + epoch,
  }


def test_one_axis_across_stages_and_resumes(tmp_path):
  metrics = tmp_path / "metrics.jsonl"
  writer = MetricsWriter(metrics, tensorboard=True)
  writer.write(_line("train_base", 1, 10, 0.9))
  writer.write(_line("train_base", 2, 20, 0.7))
  writer.write(_line("train_flat_round_1", 1, 8, 0.6))
  # killed; the resumed run redoes round 1's epoch 2 with a new writer (a new event file)
  resumed = MetricsWriter(metrics, tensorboard=True)
  resumed.drop_after("train_flat_round_1", 1)
  resumed.write(_line("train_flat_round_1", 2, 16, 0.5))
  resumed.write(_line("train_flat_round_2", 1, 8, 0.4))
  for w in (writer, resumed):
    w._writer.close()
  losses = sorted(
    (step, value) for tag, step, value in _events(tmp_path / "tensorboard") if tag == "train_loss"
  )
  assert [s for s, _ in losses] == [10, 20, 28, 36, 44]
  assert [round(v, 4) for _, v in losses] == [0.9, 0.7, 0.6, 0.5, 0.4]
  assert {t for t, _, _ in _events(tmp_path / "tensorboard")} == {"train_loss", "dev_accuracy"}
  assert [json.loads(l)["step"] for l in metrics.read_text().splitlines()] == [10, 20, 8, 16, 8]


def test_off_by_default_and_without_a_file(tmp_path):
  MetricsWriter(tmp_path / "metrics.jsonl").write(_line("train_base", 1, 10, 0.9))
  MetricsWriter(None, tensorboard=True).write(_line("train_base", 1, 10, 0.9))
  assert not (tmp_path / "tensorboard").exists()
