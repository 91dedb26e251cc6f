#!/usr/bin/env bash
# N processes of one run on this host, talking over the loopback interface (testing the multi-process
# path on one machine, or one process per GPU).
usage() {
  cat <<'TXT'
usage: launch/processes.sh --processes N [--cpu-devices D] [--port P] --config CONFIG --workdir DIR [--config.key=value ...]

Starts N processes of `python -m flat_jax.main` on this host; process 0 coordinates on
127.0.0.1:P (default 23456) and writes results.json, metrics.jsonl, log.txt and the report. Each
line of output starts with [i], the process it came from. If one process fails, the others stop
within a minute (JAX's heartbeat; the launcher kills any that remain after 90 s); the exit status
is the first failure's. Re-running the same command resumes from the workdir's checkpoints.
  --cpu-devices D   run on the CPU with D simulated devices per process (N*D devices in all)
example: launch/processes.sh --processes 2 --cpu-devices 2 --config configs/trec_cnn.py --workdir runs/trec_cnn
TXT
}
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then usage; exit 0; fi
processes="" devices="" port=23456
while [ $# -gt 0 ]; do
  case "$1" in
    --processes) processes="${2:-}"; shift 2 ;;
    --cpu-devices) devices="${2:-}"; shift 2 ;;
    --port) port="${2:-}"; shift 2 ;;
    *) break ;;
  esac
done
[[ "$processes" =~ ^[1-9][0-9]*$ ]] || { echo "error: --processes N (N >= 1) is required" >&2; usage >&2; exit 2; }
[ -z "$devices" ] || [[ "$devices" =~ ^[1-9][0-9]*$ ]] || { echo "error: --cpu-devices takes a positive number" >&2; exit 2; }
python="$root/.venv/bin/python"
[ -x "$python" ] || { echo "no $python: run 'bash setup.sh' first" >&2; exit 2; }
if [ -n "$devices" ]; then
  export JAX_PLATFORMS=cpu XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=$devices"
fi
export FLAT_JAX_COORDINATOR="127.0.0.1:$port" FLAT_JAX_NUM_PROCESSES="$processes"

pids=()
for ((i = 0; i < processes; i++)); do
  FLAT_JAX_PROCESS_ID=$i "$python" -m flat_jax.main "$@" > >(sed -u "s/^/[$i] /") 2>&1 &
  pids+=($!)
  echo "[launch] process $i: pid $!"
done
# JAX takes SIGTERM as a preemption notice and carries on: TERM first, then KILL
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

status=0 first_failure="" watchdog=""
alive=("${pids[@]}")
while [ ${#alive[@]} -gt 0 ]; do
  done_pid=""
  wait -n -p done_pid "${alive[@]}"
  code=$?
  [ -n "$done_pid" ] || break
  still=()
  for p in "${alive[@]}"; do [ "$p" = "$done_pid" ] || still+=("$p"); done
  alive=("${still[@]}")
  for ((i = 0; i < processes; i++)); do [ "${pids[$i]}" = "$done_pid" ] && who=$i; done
  if [ "$code" -ne 0 ] && [ -z "$first_failure" ]; then
    first_failure=$who status=$code
    echo "[launch] process $who exited with status $code; the others should stop on their own" >&2
    ( sleep 90; stop_all ) &
    watchdog=$!
  fi
done
[ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
exit "$status"
