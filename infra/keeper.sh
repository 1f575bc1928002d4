#!/usr/bin/env bash
# Start, stop and report Keeper's own processes (agents, projector, callbacks, API, console,
# reconciler) in the background.
# The broker and the database have their own scripts (infra/kafka, infra/postgres); this one
# runs after them. Each component: a pid file in .local/run, a log in .local/logs.
# Each runs under its own infra/supervise.sh, which restarts it with back-off when it exits
# and records the restart in .local/run/restarts.log (docs/operations.md, "Supervision").
#
#   infra/keeper.sh up | down | status | seed | banner
#
# One KEEPER_TOPIC_PREFIX (empty by default) names the topics of every component, so a second
# deployment (or a test) can share a broker without seeing anyone else's messages.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${KEEPER_STATE:-$ROOT/.local}"
RUN="$STATE/run"
LOGS="$STATE/logs"
PY="$ROOT/.venv/bin/python"
cd "$ROOT"

API_PORT="${KEEPER_API_PORT:-8000}"
AGENTS_PORT="${KEEPER_AGENTS_WEB_PORT:-6066}"
CONSOLE_PORT="${KEEPER_CONSOLE_PORT:-8501}"
export KEEPER_CONSOLE_API_BASE_URL="${KEEPER_CONSOLE_API_BASE_URL:-http://127.0.0.1:$API_PORT}"
export KEEPER_TOPIC_PREFIX="${KEEPER_TOPIC_PREFIX:-}"
export KEEPER_AGENTS_TOPIC_PREFIX="${KEEPER_AGENTS_TOPIC_PREFIX:-$KEEPER_TOPIC_PREFIX}"
export KEEPER_AGENTS_WEB_PORT="$AGENTS_PORT"
export KEEPER_AGENTS_DATADIR="${KEEPER_AGENTS_DATADIR:-$STATE/agents}"
export KEEPER_PUBLIC_BASE_URL="${KEEPER_PUBLIC_BASE_URL:-http://127.0.0.1:$API_PORT}"
export RUN LOGS # for infra/supervise.sh

# Static group membership (ADR 0012): each agent worker slot keeps one group instance id,
# <host>-<slot>, so the worker its supervisor starts after a crash takes the slot's partitions
# at once instead of after the session timeout. One id per slot and host: a second process of
# the same slot cannot bind the slot's web port. KEEPER_AGENTS_STATIC_MEMBERSHIP=false: dynamic.
instance_id() {
  if [ "${KEEPER_AGENTS_STATIC_MEMBERSHIP:-true}" = true ]; then echo "$(hostname)-$1"; fi
}

# name|command|health: "http://..." (answers 2xx), "log:<regex>" (a line this start wrote to
# the component's log matches), or "-" (none). Started in this order, stopped in reverse.
COMPONENTS=("agents|env KEEPER_AGENTS_GROUP_INSTANCE_ID=$(instance_id agents) $PY -m stream_agents worker -l info|log:Worker.*Ready")
# KEEPER_AGENT_WORKERS > 1: more workers of the same app, sharing the partitions between them.
for ((i = 2; i <= ${KEEPER_AGENT_WORKERS:-1}; i++)); do
  COMPONENTS+=("agents-$i|env KEEPER_AGENTS_WEB_PORT=$((AGENTS_PORT + i - 1)) KEEPER_AGENTS_DATADIR=$KEEPER_AGENTS_DATADIR-$i KEEPER_AGENTS_GROUP_INSTANCE_ID=$(instance_id agents-$i) $PY -m stream_agents worker -l info|log:Worker.*Ready")
done
COMPONENTS+=(
  "projector|$PY -m stream_agents.projector|log:projector .* -> "
  "callbacks|$PY -m stream_agents.callbacks|log:callbacks .* sending"
  "card-projector|$PY -m stream_agents.card_projector|log:card projector .*card-alerts"
  "api|$ROOT/.venv/bin/uvicorn ingest_api.app:app --host 127.0.0.1 --port $API_PORT --loop uvloop --http httptools --no-access-log --log-config $ROOT/infra/logging.json --timeout-graceful-shutdown 5|http://127.0.0.1:$API_PORT/readyz?scope=process"
  "console|$ROOT/.venv/bin/streamlit run ops_console/app.py --server.headless true --server.address 127.0.0.1 --server.port $CONSOLE_PORT --browser.gatherUsageStats false --client.toolbarMode viewer|http://127.0.0.1:$CONSOLE_PORT/_stcore/health"
  "reconciler|$PY -m stream_agents.reconcile --every ${KEEPER_RECONCILE_EVERY_S:-300}|log:reconciling every"
)

# KEEPER_WITHOUT="console reconciler": leave those components out (tests that need fewer).
if [ -n "${KEEPER_WITHOUT:-}" ]; then
  kept=()
  for entry in "${COMPONENTS[@]}"; do
    [[ " $KEEPER_WITHOUT " == *" ${entry%%|*} "* ]] || kept+=("$entry")
  done
  COMPONENTS=("${kept[@]}")
fi

supervisor_pid() { cat "$RUN/supervise/$1.pid" 2>/dev/null || echo 0; }
component_pid() { cat "$RUN/$1.pid" 2>/dev/null || echo 0; }
alive() { [ "$1" -gt 0 ] && kill -0 "$1" 2>/dev/null; }
restart_count() { grep -c -- " component=$1 " "$RUN/restarts.log" 2>/dev/null || true; }

start_one() {
  local name=$1 cmd=$2
  if alive "$(supervisor_pid "$name")"; then
    echo "$name: already supervised (pid $(component_pid "$name"))"
    return
  fi
  if alive "$(component_pid "$name")"; then # started by an older keeper.sh, unsupervised
    echo "$name: already running unsupervised (pid $(component_pid "$name"))"
    return
  fi
  rm -f "$RUN/$name.pid"
  # Detached from our stdout/stderr: a caller capturing them must not wait on the child.
  nohup "$ROOT/infra/supervise.sh" "$name" "$cmd" >>"$LOGS/$name.log" 2>&1 </dev/null &
  local deadline=$((SECONDS + 10))
  until [ -s "$RUN/$name.pid" ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
  echo "$name: started (pid $(component_pid "$name"), supervised, log $LOGS/$name.log)"
}

healthy() {
  local name=$1 check=$2
  case "$check" in
    -) return 0 ;;
    log:*)
      # Not a pipe: grep -q stops at the first match, and under pipefail the SIGPIPE that
      # tail then gets on a long log would read as "not healthy".
      grep -Eq -- "${check#log:}" \
        < <(tail -c +"$(($(cat "$RUN/$name.offset") + 1))" "$LOGS/$name.log" 2>/dev/null)
      ;;
    *)
      "$PY" - "$check" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
PY
      ;;
  esac
}

wait_healthy() {
  local name=$1 url=$2 deadline=$((SECONDS + 90)) restarts
  restarts=$(restart_count "$name")
  # A component between two runs (the supervisor's back-off) is waited for; one that exits
  # during this wait has failed to start.
  until alive "$(component_pid "$name")" && healthy "$name" "$url"; do
    if [ "$(restart_count "$name")" != "$restarts" ] || ! alive "$(supervisor_pid "$name")"; then
      echo "$name: exited during start (the supervisor retries with back-off);" \
        "last log lines:" >&2
      tail -n 40 "$LOGS/$name.log" >&2 || true
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "$name: not healthy after 90 s; last log lines:" >&2
      tail -n 40 "$LOGS/$name.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  echo "$name: ready"
}

stop_one() {
  local name=$1 pid
  pid=$(supervisor_pid "$name")
  if alive "$pid"; then # the supervisor stops its component (TERM, then KILL after 10 s)
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 75); do alive "$pid" || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  pid=$(component_pid "$name")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [ -f "$RUN/$name.pid" ] || [ -f "$RUN/supervise/$name.pid" ]; then echo "$name: stopped"; fi
  rm -f "$RUN/$name.pid" "$RUN/$name.offset" "$RUN/supervise/$name.pid"
}

up() {
  mkdir -p "$RUN" "$LOGS"
  local entry name cmd url
  # One at a time: the agents create the topics the others read, and the API is only ready
  # when the agents answer.
  for entry in "${COMPONENTS[@]}"; do
    IFS='|' read -r name cmd url <<<"$entry"
    start_one "$name" "$cmd"
    wait_healthy "$name" "$url"
  done
}

# Demo data (idempotent): a partner with an API key, a pool with cards, console users; the
# configuration is published to the agents.
seed() {
  "$PY" -m ops_console.admin_cli --actor demo-seed seed-demo --env-file "$STATE/demo-partner.env"
}

down() {
  local entry name cmd url i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    IFS='|' read -r name cmd url <<<"${COMPONENTS[$i]}"
    stop_one "$name"
  done
}

status() {
  local rc=0 entry name cmd url restarts last
  "$ROOT/infra/kafka/kafka.sh" status || rc=1
  "$ROOT/infra/postgres/pg.sh" status || rc=1
  for entry in "${COMPONENTS[@]}"; do
    IFS='|' read -r name cmd url <<<"$entry"
    restarts=$(restart_count "$name")
    last=""
    if [ "${restarts:-0}" -gt 0 ]; then
      last=", last: $(grep -- " component=$name " "$RUN/restarts.log" | tail -n 1 | cut -d' ' -f1,3)"
    fi
    if alive "$(component_pid "$name")"; then
      echo "$name: running (pid $(component_pid "$name"), ${restarts:-0} restarts$last)"
    elif alive "$(supervisor_pid "$name")"; then
      echo "$name: restarting (supervisor waits out its back-off; ${restarts:-0} restarts$last)"
      rc=1
    else
      echo "$name: stopped"
      rc=1
    fi
  done
  echo
  "$PY" -m ingest_api.pipeline_status || rc=1
  return $rc
}

banner() {
  echo
  echo "Keeper is up."
  status || true
  echo
  echo "API:    http://127.0.0.1:$API_PORT  (OpenAPI: /docs, readiness: /readyz)"
  echo "Console: http://127.0.0.1:$CONSOLE_PORT  (operators, admins, analysts; docs/console.md)"
  echo "Agents: http://127.0.0.1:$AGENTS_PORT  (Faust web)"
  echo "Metrics: /metrics on the API and the agents; projector, card projector, callbacks," \
    "reconciler on :${KEEPER_METRICS_PROJECTOR_PORT:-9401}-${KEEPER_METRICS_RECONCILER_PORT:-9404}"
  local prometheus
  prometheus=$("$ROOT/infra/prometheus/prometheus.sh" url 2>/dev/null || true)
  if [ -n "$prometheus" ]; then
    echo "Prometheus: $prometheus  (alerts: $prometheus/alerts; docs/operations.md)"
  else
    echo "Prometheus: not running (make observe)"
  fi
  if [ -f "$STATE/demo-partner.env" ]; then
    echo "Demo partner credentials: $STATE/demo-partner.env (see README, \"Try it\")"
    echo "Demo console users: admin / operator / analyst, password <role>-demo-password" \
      "(or \$KEEPER_DEMO_<ROLE>_PASSWORD)"
  fi
  echo "Logs: $LOGS (components), $STATE/kafka, $STATE/pg"
  echo "Stop everything with: make down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  seed) seed ;;
  banner) banner ;;
  *) echo "usage: $0 up|down|status|seed|banner" >&2; exit 2 ;;
esac
