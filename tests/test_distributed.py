"""Runs over several processes: where the process group comes from, and 2 processes x 2 CPU devices
on 127.0.0.1 (JAX's gloo collectives) against 1 process x 4 devices, killed and resumed."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from flat_jax import distributed


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_explicit_variables_make_a_group_and_flags_override_them():
  env = {
    "FLAT_JAX_COORDINATOR": "10.0.0.1:1234",
    "FLAT_JAX_NUM_PROCESSES": "4",
    "FLAT_JAX_PROCESS_ID": "3",
  }
  assert distributed.detect(environ=env) == distributed.ProcessGroup(
    "explicit", "10.0.0.1:1234", 4, 3
  )
  assert distributed.detect("127.0.0.1:9", 2, 1, environ=env) == distributed.ProcessGroup(
    "explicit", "127.0.0.1:9", 2, 1
  )


@pytest.mark.parametrize(
  "env, message",
  [
    ({"FLAT_JAX_COORDINATOR": "10.0.0.1:1234", "FLAT_JAX_NUM_PROCESSES": "2"}, "no id"),
    ({"FLAT_JAX_NUM_PROCESSES": "2", "FLAT_JAX_PROCESS_ID": "0"}, "no address"),
    (
      {
        "FLAT_JAX_COORDINATOR": "10.0.0.1",
        "FLAT_JAX_NUM_PROCESSES": "2",
        "FLAT_JAX_PROCESS_ID": "0",
      },
      "lacks a port",
    ),
    (
      {"FLAT_JAX_COORDINATOR": "h:1", "FLAT_JAX_NUM_PROCESSES": "2", "FLAT_JAX_PROCESS_ID": "2"},
      "outside 0..1",
    ),
    (
      {"FLAT_JAX_COORDINATOR": "h:1", "FLAT_JAX_NUM_PROCESSES": "two", "FLAT_JAX_PROCESS_ID": "0"},
      "not an integer",
    ),
  ],
)
def test_an_incomplete_group_is_a_clear_error(env, message):
  with pytest.raises(distributed.DistributedError, match=message):
    distributed.detect(environ=env)


def test_slurm_and_tpu_pods_are_left_to_jax_and_one_task_is_a_single_process():
  slurm = {"SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_STEP_ID": "0"}
  assert distributed.detect(environ=slurm) == distributed.ProcessGroup("slurm", "", 8, 5)
  # an sbatch script itself (no step yet) and a one-task step run alone
  assert distributed.detect(environ={"SLURM_NTASKS": "8"}).kind == "single"
  assert distributed.detect(environ={"SLURM_NTASKS": "1", "SLURM_STEP_ID": "0"}).kind == "single"
  # one task per node drives all the node's GPUs; one task per GPU keeps JAX's choice (SLURM_LOCALID)
  assert distributed.slurm_node_gpus(
    {"SLURM_NTASKS_PER_NODE": "1", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}
  ) == [0, 1, 2, 3]
  assert distributed.slurm_node_gpus({"SLURM_GPUS_ON_NODE": "8"}) == list(range(8))
  assert (
    distributed.slurm_node_gpus({"SLURM_NTASKS_PER_NODE": "8", "SLURM_GPUS_ON_NODE": "8"}) is None
  )
  assert distributed.slurm_node_gpus({}) is None
  tpu = {"TPU_WORKER_HOSTNAMES": "t0,t1,t2,t3", "TPU_WORKER_ID": "2"}
  assert distributed.detect(environ=tpu) == distributed.ProcessGroup("tpu", "", 4, 2)
  assert distributed.detect(environ={"TPU_WORKER_HOSTNAMES": "localhost"}).kind == "single"
  assert distributed.detect(environ={}).kind == "single"
  # a Cloud TPU VM slice shows itself only to jax.distributed's metadata query: asked for by name
  assert distributed.detect(environ={"FLAT_JAX_DISTRIBUTED": "auto"}).kind == "auto"
  with pytest.raises(distributed.DistributedError, match="only value it takes is 'auto'"):
    distributed.detect(environ={"FLAT_JAX_DISTRIBUTED": "yes"})


# --- two processes on loopback ----------------------------------------------------------------

# grad_reduction=ordered: the gradients summed in device order, so 2 x 2 devices train bit for bit
# as 1 x 4 (gloo's all-reduce sums in another order than XLA's in-process one; the last-bit
# difference grows over hundreds of Adam steps)
SETTINGS = [
  "--config",
  "configs/trec_cnn.py",
  "--config.mode=flat",
  "--config.rounds=1",
  "--config.data.train_limit=300",
  "--config.attack.num_examples=16",
  "--config.train.epochs=3",
  "--config.eval.num_examples=6",
  "--config.train.grad_reduction=ordered",
]


def _cpu_env(devices: int) -> dict:
  return dict(
    os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}"
  )


def _launch(workdir, port, log):
  """The launcher with its output in the file `log` (a pipe nobody drains would stall the run).
  Each process simulates 4 CPU devices and trains on 2 of them: XLA:CPU sizes a process's thread
  pool by max(cores, simulated devices) and rounds by it, so this gives both runs the same pool."""
  with open(log, "w") as f:
    return subprocess.Popen(
      [
        "launch/processes.sh",
        "--processes",
        "2",
        "--cpu-devices",
        "4",
        "--port",
        str(port),
        "--workdir",
        str(workdir),
        *SETTINGS,
      ],
      env=dict(os.environ, FLAT_JAX_DEVICES_PER_PROCESS="2"),
      stdout=f,
      stderr=subprocess.STDOUT,
    )


def _records(workdir, name="adversarial/round_1.jsonl"):
  return [json.loads(l) for l in (workdir / name).read_text().splitlines()]


def test_two_processes_killed_and_resumed_match_one_process(tmp_path, shared_data):
  reference = tmp_path / "one"
  done = subprocess.run(
    [sys.executable, "-m", "flat_jax.main", "--workdir", str(reference), *SETTINGS],
    env=_cpu_env(4),
    capture_output=True,
    text=True,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  assert "devices: 4 x cpu over 1 process(es)" in done.stderr

  # kill process 1 during the FLAT round's training: process 0 must give up on its own
  two = tmp_path / "two"
  launcher = _launch(two, _free_port(), tmp_path / "killed.out")
  deadline = time.time() + 300
  while not (two / "checkpoints" / "train_flat_round_1" / "latest" / "1").exists():
    assert launcher.poll() is None and time.time() < deadline, "the 2-process run ended early"
    time.sleep(0.2)
  pids = [
    l.split()
    for l in (tmp_path / "killed.out").read_text().splitlines()
    if l.startswith("[launch] process 1: pid")
  ]
  os.kill(int(pids[0][-1]), signal.SIGKILL)
  killed_at = time.time()
  launcher.wait(timeout=120)
  assert time.time() - killed_at < 60, "the surviving process hung after its peer was killed"
  assert launcher.returncode != 0
  assert "process 1 exited with status 137" in (tmp_path / "killed.out").read_text()
  assert json.loads((two / "results.json").read_text())["status"] == "running"
  log = (two / "log.txt").read_text()  # only process 0 writes it
  assert "round 1: textfooler on train: process 0 of 2" in log and "process 1 of 2" not in log

  resumed = _launch(two, _free_port(), tmp_path / "resumed.out")
  resumed.wait(timeout=600)
  out = (tmp_path / "resumed.out").read_text()
  assert resumed.returncode == 0, out[-3000:]
  assert "[0] " in out and "[1] " in out
  assert "devices: 4 x cpu over 2 process(es)" in out
  assert "train_flat_round_1: resuming after epoch 1 of 3" in out

  one_results = json.loads((reference / "results.json").read_text())
  two_results = json.loads((two / "results.json").read_text())
  assert two_results["status"] == "finished"
  assert abs(one_results["dev_accuracy"] - two_results["dev_accuracy"]) <= 0.1
  assert abs(one_results["standard_accuracy"] - two_results["standard_accuracy"]) <= 0.1
  assert (
    two_results["after_attack"]["textfooler"]["accuracy"]
    == one_results["after_attack"]["textfooler"]["accuracy"]
  )
  assert "ig" in two_results["interpretation"]
  # the merged adversarial set: the same examples, each attacked by one process, the parts gone
  one_set, two_set = _records(reference), _records(two)
  assert [r["index"] for r in two_set] == [r["index"] for r in one_set] and len(one_set) == 16
  assert [r["status"] for r in two_set] == [r["status"] for r in one_set]
  successful = lambda records: [
    (r["index"], r["perturbed"]) for r in records if r["status"] == "successful"
  ]
  assert successful(two_set) == successful(one_set) and successful(one_set)
  assert not list((two / "adversarial").glob("*.part*")) and not list(
    (two / "attacks").glob("*.part*")
  )
  assert [r["index"] for r in _records(two, "attacks/test_textfooler.jsonl")] == list(range(6))
  metrics = [json.loads(l) for l in (two / "metrics.jsonl").read_text().splitlines()]
  assert [(m["stage"], m["epoch"]) for m in metrics] == [
    ("train_base", 1),
    ("train_base", 2),
    ("train_base", 3),
    ("train_flat_round_1", 1),
    ("train_flat_round_1", 2),
    ("train_flat_round_1", 3),
  ]
  one_metrics = [json.loads(l) for l in (reference / "metrics.jsonl").read_text().splitlines()]
  assert len(one_metrics) == len(metrics)
  for a, b in zip(one_metrics, metrics):  # killed and resumed, yet the same training
    assert a["dev_accuracy"] == b["dev_accuracy"], (a, b)
    np.testing.assert_allclose(b["train_loss"], a["train_loss"], rtol=1e-6)
  assert (two / "report" / "index.html").exists()


def test_processes_that_do_not_share_the_workdir_stop_with_a_message(tmp_path):
  port = _free_port()
  procs = [
    subprocess.Popen(
      [
        sys.executable,
        "-m",
        "flat_jax.main",
        "--workdir",
        str(tmp_path / f"own_{i}"),
        *SETTINGS,
        "--coordinator_address",
        f"127.0.0.1:{port}",
        "--num_processes",
        "2",
        "--process_id",
        str(i),
      ],
      env=_cpu_env(1),
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(2)
  ]
  outs = [p.communicate(timeout=180)[0] for p in procs]
  assert [p.returncode for p in procs] == [2, 2], outs[0][-2000:]
  for out in outs:
    assert "processes [1] do not see" in out and "filesystem that every process shares" in out
