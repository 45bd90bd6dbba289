#!/usr/bin/env bash
# `make run-scaled`: Workroom as a scaled deployment on one machine (see docs/deploy.md):
#   - PostgreSQL as the database (WORKROOM_DATABASE_URL; created and migrated if missing)
#   - Redis for Reflex's state manager (REFLEX_REDIS_URL), so several web workers share tabs
#   - GRANIAN_WORKERS web workers (default 2) behind one port, none running a generation worker
#   - WORKERS separate `workroom worker` processes (default 1), each restarted if it dies; the
#     billing scheduler runs in exactly one of them (PostgreSQL advisory lock)
#   - with the local generation provider, one `workroom local-renderer` process (niced)
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-3000}"
export WORKROOM_DATABASE_URL="${WORKROOM_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/workroom}"
export REFLEX_REDIS_URL="${REFLEX_REDIS_URL:-redis://127.0.0.1:6379/0}"
export GRANIAN_WORKERS="${GRANIAN_WORKERS:-2}"
WORKERS="${WORKERS:-1}"

case "$WORKROOM_DATABASE_URL" in
  postgresql*) ;;
  *) echo "run-scaled needs PostgreSQL: set WORKROOM_DATABASE_URL=postgresql://..." >&2; exit 2 ;;
esac

.venv/bin/python scripts/scaled_prepare.py

.venv/bin/workroom db upgrade
.venv/bin/workroom seed-demo
.venv/bin/workroom demo-logins --url "http://localhost:${PORT}"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# The local renderer (the stand-in for hosted model services, which draw on their own machines)
# runs as its own process, niced: its drawing never takes a core from the web workers, and its
# port has one owner. Restarted if it dies; the workers use it (and start none of their own).
if [ "${WORKROOM_GENERATION_PROVIDER:-local}" = "local" ]; then
  (
    trap 'kill -TERM $child 2>/dev/null; wait $child; exit 0' TERM INT
    while true; do
      nice -n 10 .venv/bin/workroom local-renderer & child=$!
      wait $child || true
      echo "workroom local-renderer exited; restarting in 2 s" >&2
      sleep 2
    done
  ) &
  pids+=($!)
  .venv/bin/python scripts/wait_for_renderer.py
fi

# Each worker restarts when it dies (the web app's /api/health says "degraded" meanwhile).
for i in $(seq 1 "$WORKERS"); do
  (
    trap 'kill -TERM $child 2>/dev/null; wait $child; exit 0' TERM INT
    while true; do
      nice -n 5 .venv/bin/workroom worker & child=$!
      wait $child || true
      echo "workroom worker $i exited; restarting in 2 s" >&2
      sleep 2
    done
  ) &
  pids+=($!)
done

WORKROOM_RUN_WORKER=0 .venv/bin/reflex run --env prod --single-port \
  --frontend-port "$PORT" --backend-port "$PORT" &
pids+=($!)
wait -n "${pids[@]}"
