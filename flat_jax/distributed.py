"""Runs that span processes: JAX's multi-controller runtime, the global 'data' mesh, each process's
part of a batch, and which process writes what.

Every process runs the same program on the same data (same seed, same batch order); jitted steps
see global arrays over all hosts' devices and XLA's collectives sum the gradients. What differs:
- each process feeds only its own rows of a global batch (its devices' shards);
- the training attack is split: each process attacks every P-th example with its own host's
  workers, and the shards are merged through the workdir into one adversarial set on every process;
- one process (index 0, the primary) writes results.json, metrics.jsonl, log.txt, the report and
  the merged adversarial files, while all of them take part in Orbax saves.
The workdir must be one folder that every process sees (a shared filesystem): checked at start.

Where the run spans processes comes from, in order: the --coordinator_address/--num_processes/
--process_id flags of flat_jax.main, the FLAT_JAX_COORDINATOR / FLAT_JAX_NUM_PROCESSES /
FLAT_JAX_PROCESS_ID variables, a SLURM step of more than one task, a TPU slice on GKE
(TPU_WORKER_HOSTNAMES), or FLAT_JAX_DISTRIBUTED=auto, which leaves the search to jax.distributed (a
Cloud TPU VM slice announces itself only through its metadata server; launch/tpu_pod.sh sets it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import secrets

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "data"
COORDINATOR_ENV = "FLAT_JAX_COORDINATOR"
NUM_PROCESSES_ENV = "FLAT_JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "FLAT_JAX_PROCESS_ID"
HEARTBEAT_ENV = "FLAT_JAX_HEARTBEAT_S"
AUTO_ENV = "FLAT_JAX_DISTRIBUTED"  # "auto": let jax.distributed find the cluster (GCE TPU VMs, GKE)
# a dead peer is noticed after this many seconds without its heartbeat (JAX's default, 100 s, leaves
# the survivors waiting that long); a slow step or compilation does not stop the heartbeat thread
DEFAULT_HEARTBEAT_S = 20
# the survivors of a finished run wait at shutdown for the primary, which writes the report last
SHUTDOWN_TIMEOUT_S = 3600


class DistributedError(RuntimeError):
  pass


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
  """How this run spans processes, as found in the flags and the environment."""

  kind: str  # "single" | "explicit" | "slurm" | "tpu" | "auto"
  coordinator: str = ""
  num_processes: int = 1
  process_id: int = 0


def _int(value, name: str) -> int:
  try:
    return int(value)
  except (TypeError, ValueError):
    raise DistributedError(f"{name}={value!r} is not an integer") from None


def detect(
  coordinator: str = "", num_processes: int = 0, process_id: int = -1, environ=None
) -> ProcessGroup:
  env = os.environ if environ is None else environ
  coordinator = coordinator or env.get(COORDINATOR_ENV, "")
  if num_processes <= 0 and env.get(NUM_PROCESSES_ENV):
    num_processes = _int(env[NUM_PROCESSES_ENV], NUM_PROCESSES_ENV)
  if process_id < 0 and env.get(PROCESS_ID_ENV):
    process_id = _int(env[PROCESS_ID_ENV], PROCESS_ID_ENV)
  if coordinator or num_processes > 1:
    if not coordinator or num_processes < 1 or process_id < 0:
      raise DistributedError(
        "a run over several processes needs all three of the coordinator address (host:port), "
        "the number of processes and this process's id: --coordinator_address, --num_processes, "
        f"--process_id or ${COORDINATOR_ENV}, ${NUM_PROCESSES_ENV}, ${PROCESS_ID_ENV} "
        f"(got {coordinator or 'no address'}, {num_processes or 'no count'}, "
        f"{process_id if process_id >= 0 else 'no id'})"
      )
    if ":" not in coordinator:
      raise DistributedError(f"coordinator address {coordinator!r} lacks a port (host:port)")
    if not 0 <= process_id < num_processes:
      raise DistributedError(f"process id {process_id} is outside 0..{num_processes - 1}")
    return ProcessGroup("explicit", coordinator, num_processes, process_id)
  if env.get(AUTO_ENV, "") == "auto":
    return ProcessGroup("auto", num_processes=0, process_id=-1)  # known after initialize
  if env.get(AUTO_ENV, "") not in ("", "auto"):
    raise DistributedError(f"${AUTO_ENV}={env[AUTO_ENV]!r}: the only value it takes is 'auto'")
  if _int(env.get("SLURM_NTASKS", "1") or "1", "SLURM_NTASKS") > 1 and "SLURM_STEP_ID" in env:
    return ProcessGroup(
      "slurm",
      num_processes=_int(env["SLURM_NTASKS"], "SLURM_NTASKS"),
      process_id=_int(env.get("SLURM_PROCID", "0"), "SLURM_PROCID"),
    )
  workers = [h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]
  if len(workers) > 1:
    return ProcessGroup(
      "tpu",
      num_processes=len(workers),
      process_id=_int(env.get("TPU_WORKER_ID", "0"), "TPU_WORKER_ID"),
    )
  return ProcessGroup("single")


def initialize(group: ProcessGroup) -> None:
  """Starts JAX's distributed runtime for a group of more than one process (nothing otherwise).
  Must run before anything touches a device."""
  if group.kind == "single":
    return
  heartbeat = _int(os.environ.get(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S), HEARTBEAT_ENV)
  kwargs = dict(heartbeat_timeout_seconds=heartbeat, shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S)
  if group.kind == "explicit":
    kwargs.update(
      coordinator_address=group.coordinator,
      num_processes=group.num_processes,
      process_id=group.process_id,
    )
    host = group.coordinator.rsplit(":", 1)[0]
    if host in ("127.0.0.1", "localhost", "[::1]"):  # loopback: listen there only
      kwargs["coordinator_bind_address"] = group.coordinator.replace("localhost", "127.0.0.1")
  # slurm, tpu, auto: jax.distributed finds the coordinator, count and id itself
  if group.kind == "slurm" and (gpus := slurm_node_gpus()):
    kwargs["local_device_ids"] = gpus
  jax.distributed.initialize(**kwargs)
  logging.info(
    "process %d of %d (%s), %d local of %d devices",
    jax.process_index(),
    jax.process_count(),
    group.kind,
    jax.local_device_count(),
    jax.device_count(),
  )


def slurm_node_gpus(environ=None) -> list[int] | None:
  """With one SLURM task per node, the task drives all of the node's GPUs (JAX's SLURM default is
  one process per GPU: the GPU numbered SLURM_LOCALID). None: leave JAX's default."""
  env = os.environ if environ is None else environ
  if env.get("SLURM_NTASKS_PER_NODE", "1") != "1":
    return None
  visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
  count = len(visible) or _int(env.get("SLURM_GPUS_ON_NODE", "0") or "0", "SLURM_GPUS_ON_NODE")
  return list(range(count)) if count > 1 else None


def process_count() -> int:
  return jax.process_count()


def process_index() -> int:
  return jax.process_index()


def is_primary() -> bool:
  return jax.process_index() == 0


def make_mesh(devices=None) -> Mesh:
  """The 1-D 'data' mesh over all devices of all processes, each process's devices side by side
  (process p holds rows [p*n, (p+1)*n) of every batch). Built directly, not with jax.make_mesh:
  explicit axis types reject gradients over a sharded batch.

  FLAT_JAX_DEVICES_PER_PROCESS=k puts only each process's first k devices in the mesh. XLA:CPU
  sizes a process's thread pool by max(cores, simulated devices), and its kernels split sums by
  the pool, so a 2 x 2-device run on a 2-core host rounds differently from a 1 x 4 one; simulating 4
  devices per process and using 2 gives both the same pool (bit-identical training)."""
  if devices is None:
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    if used := _int(
      os.environ.get("FLAT_JAX_DEVICES_PER_PROCESS") or "0", "FLAT_JAX_DEVICES_PER_PROCESS"
    ):
      if not 0 < used <= jax.local_device_count():
        raise DistributedError(
          f"FLAT_JAX_DEVICES_PER_PROCESS={used}, but this process has "
          f"{jax.local_device_count()} device(s)"
        )
      devices = [
        d
        for p in range(jax.process_count())
        for d in [d for d in devices if d.process_index == p][:used]
      ]
  return Mesh(np.asarray(devices), (AXIS,))


def pad_batch(batch: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
  """Pads the batch dimension to a multiple of the device count with weight-0 rows."""
  size = len(batch["weight"])
  extra = (-size) % multiple
  if not extra:
    return batch
  return {
    k: np.concatenate([v, np.repeat(v[-1:], extra, axis=0)])
    if k != "weight"
    else np.concatenate([v, np.zeros(extra, v.dtype)])
    for k, v in batch.items()
  }


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh):
  """A host batch (the same global batch on every process) as arrays sharded over 'data'; each
  process hands over only the rows of its own devices."""
  batch = pad_batch(batch, mesh.size)
  sharding = NamedSharding(mesh, P(AXIS))
  if sharding.is_fully_addressable:
    return jax.device_put(batch, sharding)
  rows = _process_rows(mesh, len(batch["weight"]))
  return {
    k: jax.make_array_from_process_local_data(sharding, v[rows], v.shape) for k, v in batch.items()
  }


def _process_rows(mesh: Mesh, size: int) -> slice:
  mine = [i for i, d in enumerate(mesh.devices.flat) if d.process_index == jax.process_index()]
  per_device = size // mesh.size
  if mine != list(range(mine[0], mine[0] + len(mine))):
    raise DistributedError("this process's devices are not side by side in the mesh")
  return slice(mine[0] * per_device, (mine[-1] + 1) * per_device)


def replicate(tree, mesh: Mesh):
  """Every leaf as one array replicated over the mesh (the same host value on every process);
  leaves already so placed stay as they are."""
  sharding = NamedSharding(mesh, P())

  def put(x):
    if isinstance(x, jax.Array) and x.sharding == sharding:
      return x
    if sharding.is_fully_addressable:
      return jax.device_put(x, sharding)
    value = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

  return jax.tree.map(put, tree)


def to_host(x) -> np.ndarray:
  """The whole value of an array on the host, also when other processes hold some of its shards."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


def barrier(name: str) -> None:
  """Waits until every process got here (no-op in a single process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)


def broadcast_float(value: float) -> float:
  """The primary process's `value`, on every process (itself in a single process)."""
  if jax.process_count() == 1:
    return float(value)
  from jax.experimental import multihost_utils

  # as the float64's two 32-bit words: JAX without x64 would round a float64 to float32
  words = np.frombuffer(np.float64(value).tobytes(), np.uint32)
  words = np.asarray(multihost_utils.broadcast_one_to_all(words), np.uint32)
  return float(np.frombuffer(words.tobytes(), np.float64)[0])


def check_shared_workdir(workdir) -> None:
  """Fails on every process unless all of them see the primary's files in `workdir`."""
  if jax.process_count() == 1:
    return
  from jax.experimental import multihost_utils

  token = (
    np.frombuffer(secrets.token_bytes(8), np.uint32) if is_primary() else np.zeros(2, np.uint32)
  )
  token = np.asarray(multihost_utils.broadcast_one_to_all(token))
  probe = pathlib.Path(workdir) / f".shared-{token[0]:08x}{token[1]:08x}"
  if is_primary():
    probe.write_text("flat_jax\n")
  barrier("workdir probe written")
  seen = np.asarray(multihost_utils.process_allgather(np.int32(probe.exists())))
  barrier("workdir probe read")
  if is_primary():
    probe.unlink(missing_ok=True)
  if not seen.all():
    missing = [int(i) for i in np.flatnonzero(seen == 0)]
    raise DistributedError(
      f"processes {missing} do not see {workdir} as process 0 does: the "
      f"workdir must be on a filesystem that every process shares"
    )
