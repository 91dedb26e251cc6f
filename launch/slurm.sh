#!/usr/bin/env bash
# A SLURM GPU cluster: one process per node, each driving all of its node's GPUs
# (FLAT_JAX_TASKS_PER_NODE=G instead: one process per GPU, JAX giving each task the GPU SLURM_LOCALID).
#SBATCH --job-name=flat_jax
#SBATCH --ntasks-per-node=1
#SBATCH --output=flat_jax-%j.out
usage() {
  cat <<'TXT'
usage: sbatch --nodes=N --gpus-per-node=G launch/slurm.sh --config CONFIG --workdir DIR [--config.key=value ...]
       (or, inside an allocation: launch/slurm.sh --config ... --workdir ...)

Runs one process per node with srun; JAX reads the coordinator, the process count and each process's
id from SLURM's variables (jax.distributed's SLURM detection), and the data-parallel mesh spans every
GPU of every node. DIR must be on a filesystem all nodes share (the processes merge their attack
shards and write one Orbax checkpoint there); process 0 writes results.json and the report.
Re-submitting the same command resumes from DIR's checkpoints.
  FLAT_JAX_HEARTBEAT_S     seconds before the others give up on a lost node (default 20)
  FLAT_JAX_TASKS_PER_NODE  processes per node (default 1, driving all its GPUs; G: one per GPU)
example: sbatch --nodes=2 --gpus-per-node=8 launch/slurm.sh --config configs/agnews_bert.py --workdir /shared/runs/agnews_bert
TXT
}
set -euo pipefail
if [ $# -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then usage; exit 0; fi
# under sbatch the script runs from a spool copy: SLURM_SUBMIT_DIR is where it was submitted from
root="${FLAT_JAX_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}"
python="$root/.venv/bin/python"
[ -x "$python" ] || { echo "no $python: run 'bash setup.sh' in $root first (or set FLAT_JAX_ROOT)" >&2; exit 2; }
[ -n "${SLURM_JOB_ID:-}" ] || { echo "error: not inside a SLURM allocation (submit with sbatch)" >&2; exit 2; }
cd "$root"
exec srun --ntasks-per-node="${FLAT_JAX_TASKS_PER_NODE:-1}" --kill-on-bad-exit=1 "$python" -m flat_jax.main "$@"
