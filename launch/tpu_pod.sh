#!/usr/bin/env bash
# A Cloud TPU pod slice: the same command on every worker VM, started from your workstation.
usage() {
  cat <<'TXT'
usage: launch/tpu_pod.sh TPU_NAME ZONE --config CONFIG --workdir DIR [--config.key=value ...]

Runs `python -m flat_jax.main` on every worker of the TPU VM slice TPU_NAME at once (gcloud
compute tpus tpu-vm ssh --worker=all); JAX finds the coordinator and each worker's id itself, and
the mesh spans all the slice's TPU cores. Expects this repository, set up with 'bash setup.sh'
(jax[tpu] in place of the CPU wheel), at the same path on every worker (FLAT_JAX_REMOTE_ROOT,
default ~/flat_jax), and DIR on a filesystem every worker mounts (e.g. a Filestore NFS share):
the workers merge their attack shards and write one Orbax checkpoint there. Re-running the same
command resumes from DIR's checkpoints.
example: launch/tpu_pod.sh my-v4-32 us-central2-b --config configs/agnews_bert.py --workdir /mnt/shared/runs/agnews_bert
TXT
}
set -euo pipefail
if [ $# -lt 2 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then usage; [ $# -ge 1 ] && exit 0 || exit 2; fi
name=$1 zone=$2
shift 2
command -v gcloud > /dev/null || { echo "error: gcloud is not installed here" >&2; exit 2; }
remote_root="${FLAT_JAX_REMOTE_ROOT:-\$HOME/flat_jax}"
args=$(printf ' %q' "$@")
exec gcloud compute tpus tpu-vm ssh "$name" --zone "$zone" --worker=all \
  --command "cd $remote_root && FLAT_JAX_DISTRIBUTED=auto .venv/bin/python -m flat_jax.main$args"
