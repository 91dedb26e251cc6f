"""Bad inputs and concurrent use end in one clear message, with nothing already written lost."""
import json
import signal
import subprocess
import sys
import time

import pytest

from flat_jax import workdir as workdir_lib
from flat_jax.config import preset
from flat_jax.data.datasets import DataError, load_dataset

HOLD = ("import sys, time; from flat_jax import workdir; "
        "ctx = workdir.exclusive(sys.argv[1]); ctx.__enter__(); print('held', flush=True); time.sleep(600)")


def _holder(path):
  proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


def test_a_second_writer_is_refused_and_a_killed_holder_does_not_block(tmp_path):
  holder = _holder(tmp_path)
  try:
    with pytest.raises(workdir_lib.WorkdirBusy, match=f"pid {holder.pid} on .* since "):
      with workdir_lib.exclusive(tmp_path):
        pass
    cli = subprocess.run([sys.executable, "-m", "flat_jax.main", "--config", "configs/trec_cnn.py",
                          "--workdir", str(tmp_path)], capture_output=True, text=True)
    assert cli.returncode == 2 and f"in use by pid {holder.pid}" in cli.stderr
    assert not (tmp_path / "config.json").exists() and not (tmp_path / "results.json").exists()
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with workdir_lib.exclusive(tmp_path):    # the kernel dropped the killed run's lock
    pass


def test_a_non_finite_loss_stops_the_stage_and_names_it(tmp_path, shared_data):
  cli = subprocess.run([sys.executable, "-m", "flat_jax.main", "--config", "configs/trec_cnn.py",
                        "--workdir", str(tmp_path), "--config.data.train_limit=200",
                        "--config.train.learning_rate=inf", "--config.train.epochs=2"],
                       capture_output=True, text=True)
  assert cli.returncode == 2, cli.stderr[-2000:]
  assert "train_base: the training loss is nan at epoch 1, step 2" in cli.stderr
  assert json.loads((tmp_path / "results.json").read_text())["status"] == "running"
  assert not (tmp_path / "checkpoints" / "train_base" / "latest" / "1").exists()


def test_unknown_config_key_is_one_line_with_the_closest_key(tmp_path):
  cli = subprocess.run([sys.executable, "-m", "flat_jax.main", "--config", "configs/trec_cnn.py",
                        "--workdir", str(tmp_path), "--config.train.batchsize=3"],
                       capture_output=True, text=True)
  assert cli.returncode == 2
  assert cli.stderr.strip() == ("error: unknown config key 'train.batchsize' "
                                "(did you mean train.batch_size?)")
  missing = subprocess.run([sys.executable, "-m", "flat_jax.main", "--config", "configs/nope.py",
                            "--workdir", str(tmp_path)], capture_output=True, text=True)
  assert missing.returncode == 2 and missing.stderr.strip() == (
      "error: --config configs/nope.py: no such config file")


def _custom(tmp_path, labels, **data):
  for split in ("train", "test"):
    with open(tmp_path / f"{split}.jsonl", "w") as f:
      for i, label in enumerate(labels * 3):
        f.write(json.dumps({"text": f"text number {i}", "label": label}) + "\n")
  c = preset("sst2", "cnn").data
  c.name, c.path = "custom", str(tmp_path)
  for key, value in data.items():
    c[key] = value
  return c


def test_labels_map_through_their_names_and_gaps_or_one_class_are_refused(tmp_path):
  signed = load_dataset(_custom(tmp_path, [-1, 1], label_names=("-1", "1")))
  assert signed.label_names == ("-1", "1") and list(signed.train.labels[:2]) == [0, 1]
  with pytest.raises(DataError, match=r"labels are \[-1, 1\].*label_names='\(\"-1\", \"1\"\)'"):
    load_dataset(_custom(tmp_path, [-1, 1]))
  with pytest.raises(DataError, match=r"labels are \[1, 2\], not the ids 0..1"):
    load_dataset(_custom(tmp_path, [1, 2]))
  with pytest.raises(DataError, match="1 class .*at least two"):
    load_dataset(_custom(tmp_path, [0, 0]))


def test_a_set_data_path_without_data_is_an_error_not_a_fallback(tmp_path):
  c = preset("sst2", "cnn").data
  c.path = str(tmp_path / "nonexistent")
  with pytest.raises(DataError, match="data.path=.*nonexistent: no such folder"):
    load_dataset(c)


def test_bad_files_name_file_and_line(tmp_path):
  (tmp_path / "test.jsonl").write_text('{"text": "fine", "label": 0}\n{"text": "ok", "label": 1}\n')
  (tmp_path / "train.jsonl").write_bytes(b'{"text": "fine", "label": 0}\n{"text": "caf\xe9", "label": 1}\n')
  c = preset("sst2", "cnn").data
  c.name, c.path = "custom", str(tmp_path)
  with pytest.raises(DataError, match=r"train.jsonl:2: not UTF-8"):
    load_dataset(c)
  (tmp_path / "train.jsonl").write_text("\n")
  with pytest.raises(DataError, match=r"train.jsonl: no rows"):
    load_dataset(c)
  (tmp_path / "train.jsonl").unlink()
  long_text = "word " * 40000                                   # 200 KB in one CSV field
  (tmp_path / "train.csv").write_text(f'text,label\n"{long_text}",0\nshort,1\n"{long_text}",1\nx,0\n')
  assert load_dataset(c).num_classes == 2


def test_bae_without_a_masked_lm_is_refused_before_training(tmp_path):
  from flat_jax import pipeline
  c = preset("trec", "cnn")
  c.eval.attacks = ("textfooler", "bae")
  with pytest.raises(pipeline.RunError, match="bae need a masked language model: set attack.masked_lm"):
    pipeline.run(c, tmp_path)
  assert not (tmp_path / "checkpoints").exists()


def test_damaged_metrics_line_and_results_file_are_recovered(tmp_path, caplog):
  from flat_jax import pipeline
  from flat_jax.training.loop import MetricsWriter
  metrics = tmp_path / "metrics.jsonl"
  metrics.write_text('{"stage": "train_base", "epoch": 1}\n{"stage": "train_base", "epoch": 2}\n{"stage": "tr')
  MetricsWriter(metrics).drop_after("train_base", 1)
  assert metrics.read_text() == '{"stage": "train_base", "epoch": 1}\n'
  assert "metrics.jsonl:3: a damaged line" in caplog.text
  (tmp_path / "results.json").write_text('{"status": "finish')
  assert pipeline.read_results(tmp_path) == {}
  assert (tmp_path / "results.json.damaged").exists() and not (tmp_path / "results.json").exists()
