# Shared by the local-stack scripts (sourced, not run).

# stop_group PID [GRACE_SECONDS]: TERM the process group PID leads, then KILL whatever is left
# after the grace period (moto can take long to exit with a big heap).
stop_group() {
  local pid=$1 grace=${2:-5}
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $((grace * 10))); do
    # `|| true`: a process ended by the signal has a non-zero status, and under `set -e` a
    # failing `wait` here would end the caller's cleanup before the next process is stopped.
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  echo "$pid did not stop within ${grace}s; killing it" >&2
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# start_emulator DIR PORT: the project's moto launcher in its own process group; sets
# EMULATOR_PID and EMULATOR_PORT once the port is bound (PORT 0 picks a free one).
start_emulator() {
  local dir=$1 port=$2 port_file="$1/moto.port"
  rm -f "$port_file"
  setsid .venv/bin/python infra/emulator.py serve --port "$port" --port-file "$port_file" > "$dir/moto.log" 2>&1 &
  EMULATOR_PID=$!
  for _ in $(seq 1 300); do
    if [ -s "$port_file" ]; then EMULATOR_PORT=$(cat "$port_file"); return 0; fi
    if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then cat "$dir/moto.log" >&2; return 1; fi
    sleep 0.1
  done
  echo "the emulator did not start; see $dir/moto.log" >&2
  return 1
}
