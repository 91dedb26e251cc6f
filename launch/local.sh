#!/usr/bin/env bash
# One machine, all local devices (GPUs, TPU cores, or CPU).
usage() {
  cat <<'TXT'
usage: launch/local.sh [--cpu-devices N] --config CONFIG --workdir DIR [--config.key=value ...]

Runs flat_jax on every device of this machine (the data-parallel mesh spans them all).
  --cpu-devices N   simulate N CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=N)
example: launch/local.sh --config configs/sst2_cnn.py --workdir runs/sst2_cnn
TXT
}
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then usage; exit 0; fi
if [ "$1" = "--cpu-devices" ]; then
  [ $# -ge 2 ] || { usage >&2; exit 2; }
  export JAX_PLATFORMS=cpu XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=$2"
  shift 2
fi
python="$root/.venv/bin/python"
[ -x "$python" ] || { echo "no $python: run 'bash setup.sh' first" >&2; exit 2; }
exec "$python" -m flat_jax.main "$@"
