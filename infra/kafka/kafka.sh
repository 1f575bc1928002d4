#!/usr/bin/env bash
# Keeper's local Kafka: one KRaft node (broker + controller) run straight from Maven Central jars,
# so development and CI need only Java 17 and Maven, no Docker and no Kafka tarball.
#
#   infra/kafka/kafka.sh fetch    download the jars into the cache (once per version)
#   infra/kafka/kafka.sh up       start the node (formatting storage the first time), wait until
#                                 it answers a metadata request; a healthy node is left alone
#   infra/kafka/kafka.sh start    start the node without waiting for it (the nodes of a cluster
#                                 answer only once a majority of controllers runs)
#   infra/kafka/kafka.sh down     stop it: SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT seconds
#   infra/kafka/kafka.sh status   exit 0 only when the node is running and answers
#   infra/kafka/kafka.sh logs [-f] where the broker log is, and its last KAFKA_LOG_LINES (50)
#                                 lines (or follow it)
#   infra/kafka/kafka.sh reset    stop the node and delete its data (the next `up` reformats)
#
# Environment (defaults in brackets). Everything that differs between the nodes of a loopback
# cluster can be overridden, so a multi-node setup can run this script once per node:
#   KAFKA_VERSION          [infra/kafka/versions.env]
#   KEEPER_CACHE           [~/.cache/keeper]       jars: $KEEPER_CACHE/kafka-$KAFKA_VERSION/libs
#   KEEPER_STATE           [<repo>/.local]
#   KAFKA_STATE_DIR        [$KEEPER_STATE/kafka]   data/, logs/, server.properties, pid
#   KAFKA_HOST             [127.0.0.1]
#   KAFKA_PORT             [9092]                  PLAINTEXT client listener
#   KAFKA_CONTROLLER_PORT  [9093]
#   KAFKA_NODE_ID          [1]
#   KAFKA_QUORUM_BOOTSTRAP [$KAFKA_HOST:$KAFKA_CONTROLLER_PORT]
#   KAFKA_INITIAL_CONTROLLERS  [unset: a standalone controller]  passed to the storage format
#   KAFKA_CLUSTER_ID       [generated once into $KAFKA_STATE_DIR/cluster.id]
#   KAFKA_NUM_PARTITIONS   [4]
#   KAFKA_REPLICATION_FACTOR [1]
#   KAFKA_MIN_INSYNC_REPLICAS [1]
#   KAFKA_HEAP_OPTS        [-Xms256m -Xmx512m]
#   KAFKA_START_TIMEOUT    [60]  seconds `up` waits for the node to answer
#   KAFKA_STOP_TIMEOUT     [30]  seconds `down` waits before SIGKILL
#   KEEPER_PYTHON          [<repo>/.venv/bin/python]  used for the health probe when it has aiokafka
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

kafka_version_from_env="${KAFKA_VERSION:-}"
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$SCRIPT_DIR/versions.env"
KAFKA_VERSION="${kafka_version_from_env:-$KAFKA_VERSION}"

CACHE_DIR="${KEEPER_CACHE:-$HOME/.cache/keeper}/kafka-$KAFKA_VERSION"
LIBS_DIR="$CACHE_DIR/libs"
STATE_DIR="${KAFKA_STATE_DIR:-${KEEPER_STATE:-$REPO_ROOT/.local}/kafka}"
DATA_DIR="$STATE_DIR/data"
LOG_DIR="$STATE_DIR/logs"
PID_FILE="$STATE_DIR/kafka.pid"
CONFIG_FILE="$STATE_DIR/server.properties"
CLUSTER_ID_FILE="$STATE_DIR/cluster.id"
BROKER_LOG="$LOG_DIR/server.log"
CONSOLE_LOG="$LOG_DIR/console.log"
RUNNING_VERSION_FILE="$STATE_DIR/kafka.version"

KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_NODE_ID="${KAFKA_NODE_ID:-1}"
KAFKA_QUORUM_BOOTSTRAP="${KAFKA_QUORUM_BOOTSTRAP:-$KAFKA_HOST:$KAFKA_CONTROLLER_PORT}"
KAFKA_NUM_PARTITIONS="${KAFKA_NUM_PARTITIONS:-4}"
KAFKA_REPLICATION_FACTOR="${KAFKA_REPLICATION_FACTOR:-1}"
KAFKA_MIN_INSYNC_REPLICAS="${KAFKA_MIN_INSYNC_REPLICAS:-1}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KEEPER_PYTHON="${KEEPER_PYTHON:-$REPO_ROOT/.venv/bin/python}"
BOOTSTRAP="$KAFKA_HOST:$KAFKA_PORT"

say() { echo "kafka: $*"; }
die() { echo "kafka: $*" >&2; exit 1; }

java_bin() {
  if [[ -n "${JAVA_HOME:-}" ]]; then echo "$JAVA_HOME/bin/java"; else echo java; fi
}

# The broker's classpath: every jar Maven resolved, plus our log4j2 configuration.
run_java() {
  "$(java_bin)" -cp "$LIBS_DIR/*" -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.properties" \
    -Dkafka.logs.dir="$LOG_DIR" "$@"
}

# A hash of the pom, so that a changed dependency list refetches instead of reusing stale jars.
pom_digest() { sha256sum "$SCRIPT_DIR/pom.xml" | cut -d' ' -f1; }

libs_complete() {
  [[ -f "$CACHE_DIR/.complete" && "$(cat "$CACHE_DIR/.complete")" == "$(pom_digest)" ]]
}

cmd_fetch() {
  if libs_complete; then
    say "jars for $KAFKA_VERSION already in $LIBS_DIR"
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka jars"
  mkdir -p "$CACHE_DIR"
  local staging="$CACHE_DIR/libs.partial.$$"
  rm -rf "$staging"
  say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS_DIR"
  # Run Maven from the cache so that it leaves no target/ folder in the work tree.
  if ! (cd "$CACHE_DIR" && mvn -q -B -f "$SCRIPT_DIR/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$staging") >"$CACHE_DIR/fetch.log" 2>&1
  then
    rm -rf "$staging"
    tail -n 40 "$CACHE_DIR/fetch.log" >&2
    die "Maven could not fetch Kafka $KAFKA_VERSION (log: $CACHE_DIR/fetch.log)"
  fi
  rm -rf "$LIBS_DIR"
  mv "$staging" "$LIBS_DIR"
  pom_digest >"$CACHE_DIR/.complete"
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: it must still be our broker.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

python_has_aiokafka() {
  [[ -x "$KEEPER_PYTHON" ]] && "$KEEPER_PYTHON" -c 'import aiokafka' 2>/dev/null
}

# True when a broker on $BOOTSTRAP answers a metadata request and lists node $KAFKA_NODE_ID.
# A listening port is not enough: the socket opens seconds before the broker serves requests.
probe() {
  if python_has_aiokafka; then
    "$KEEPER_PYTHON" - "$BOOTSTRAP" "$KAFKA_NODE_ID" <<'PY' 2>/dev/null
import asyncio
import sys

from aiokafka import AIOKafkaClient


async def answers(bootstrap: str, node_id: int) -> bool:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await client.bootstrap()
        metadata = await client.fetch_all_metadata()
        return any(broker.nodeId == node_id for broker in metadata.brokers())
    finally:
        await client.close()


try:
    ok = asyncio.run(asyncio.wait_for(answers(sys.argv[1], int(sys.argv[2])), 5))
except Exception:
    ok = False
sys.exit(0 if ok else 1)
PY
  else
    run_java org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$BOOTSTRAP" \
      2>/dev/null | grep -q "(id: $KAFKA_NODE_ID "
  fi
}

render_config() {
  local key value
  local -a sed_args=()
  for key in KAFKA_NODE_ID KAFKA_QUORUM_BOOTSTRAP KAFKA_HOST KAFKA_PORT KAFKA_CONTROLLER_PORT \
    KAFKA_NUM_PARTITIONS KAFKA_REPLICATION_FACTOR KAFKA_MIN_INSYNC_REPLICAS; do
    value="${!key}"
    sed_args+=(-e "s|@$key@|$value|g")
  done
  sed_args+=(-e "s|@KAFKA_DATA_DIR@|$DATA_DIR|g")
  sed "${sed_args[@]}" "$SCRIPT_DIR/server.properties.template" >"$CONFIG_FILE.tmp"
  if grep -q '@[A-Z_]*@' "$CONFIG_FILE.tmp"; then
    die "unrendered placeholder in server.properties: $(grep -o '@[A-Z_]*@' "$CONFIG_FILE.tmp")"
  fi
  mv "$CONFIG_FILE.tmp" "$CONFIG_FILE"
}

# Format the KRaft log directory once. The cluster id is generated on first use and kept (the
# nodes of a multi-node cluster share one through KAFKA_CLUSTER_ID).
format_storage() {
  [[ -f "$DATA_DIR/meta.properties" ]] && return 0
  if [[ -n "${KAFKA_CLUSTER_ID:-}" ]]; then
    echo "$KAFKA_CLUSTER_ID" >"$CLUSTER_ID_FILE"
  elif [[ ! -s "$CLUSTER_ID_FILE" ]]; then
    run_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 >"$CLUSTER_ID_FILE"
  fi
  local -a quorum=(--standalone)
  if [[ -n "${KAFKA_INITIAL_CONTROLLERS:-}" ]]; then
    quorum=(--initial-controllers "$KAFKA_INITIAL_CONTROLLERS")
  fi
  say "formatting storage in $DATA_DIR (cluster id $(cat "$CLUSTER_ID_FILE"))"
  run_java kafka.tools.StorageTool format --config "$CONFIG_FILE" \
    --cluster-id "$(cat "$CLUSTER_ID_FILE")" "${quorum[@]}" >>"$CONSOLE_LOG" 2>&1 \
    || { tail -n 40 "$CONSOLE_LOG" >&2; die "formatting storage failed"; }
}

show_failure() {
  local log="$BROKER_LOG"
  [[ -s "$log" ]] || log="$CONSOLE_LOG"
  echo "kafka: last 40 lines of $log:" >&2
  tail -n 40 "$log" >&2 || true
  # The cause is often far above the shutdown noise at the end.
  local errors='^\[[^]]*\] (ERROR|FATAL)|^[a-zA-Z0-9_.$]+(Exception|Error): '
  if grep -qE "$errors" "$log" 2>/dev/null; then
    echo "kafka: first errors in $log:" >&2
    grep -m 8 -E "$errors" "$log" | cut -c 1-400 >&2
  fi
}

start_broker() {
  # Each start gets a fresh log, so a failure report shows this start's errors only.
  if [[ -f "$BROKER_LOG" ]]; then mv "$BROKER_LOG" "$BROKER_LOG.previous"; fi
  : >"$CONSOLE_LOG"
  rm -f "$PID_FILE"
  echo "$KAFKA_VERSION" >"$RUNNING_VERSION_FILE"
  # setsid: the broker outlives the shell (and the pytest run) that started it, and a Ctrl-C there
  # does not reach it. The inner shell records its own pid, which `exec` hands over to java.
  # 9>&-: the broker must not inherit (and so hold forever) the state lock.
  local -a heap_opts
  read -r -a heap_opts <<<"$KAFKA_HEAP_OPTS"
  # shellcheck disable=SC2016
  nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    "$(java_bin)" "${heap_opts[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.properties" \
    -Dkafka.logs.dir="$LOG_DIR" -cp "$LIBS_DIR/*" kafka.Kafka "$CONFIG_FILE" \
    </dev/null >>"$CONSOLE_LOG" 2>&1 9>&- &
}

wait_healthy() {
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if [[ -s "$PID_FILE" ]] && ! running_pid >/dev/null; then
      show_failure
      die "the broker exited during startup"
    fi
    if probe; then return 0; fi
    sleep 0.5
  done
  show_failure
  die "no answer on $BOOTSTRAP within ${KAFKA_START_TIMEOUT}s (still running: see logs)"
}

# Start the node if it is not running; `up` then waits for it to answer.
cmd_start() {
  running_pid >/dev/null && return 0
  libs_complete || cmd_fetch
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  render_config
  format_storage
  say "starting Kafka $KAFKA_VERSION node $KAFKA_NODE_ID on $BOOTSTRAP"
  start_broker
}

cmd_up() {
  if running_pid >/dev/null; then
    if probe; then
      say "already running and healthy on $BOOTSTRAP (logs: $BROKER_LOG)"
      return 0
    fi
    say "running but not answering yet; waiting"
    wait_healthy
    say "healthy on $BOOTSTRAP (logs: $BROKER_LOG)"
    return 0
  fi
  if probe; then
    die "something else already serves Kafka on $BOOTSTRAP; use it through" \
      "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP, or pick another KAFKA_PORT"
  fi
  cmd_start
  wait_healthy
  say "healthy on $BOOTSTRAP (logs: $BROKER_LOG)"
}

cmd_down() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  say "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

cmd_status() {
  local pid
  if ! pid="$(running_pid)"; then
    say "not running"
    return 1
  fi
  if ! probe; then
    say "running (pid $pid) but not answering on $BOOTSTRAP"
    return 1
  fi
  say "healthy on $BOOTSTRAP (pid $pid, Kafka $(cat "$RUNNING_VERSION_FILE" 2>/dev/null)," \
    "logs: $BROKER_LOG)"
}

cmd_logs() {
  echo "$BROKER_LOG"
  [[ -f "$BROKER_LOG" ]] || die "no log yet"
  if [[ "${1:-}" == "-f" ]]; then exec tail -n 50 -F "$BROKER_LOG"; fi
  tail -n "${KAFKA_LOG_LINES:-50}" "$BROKER_LOG"
}

cmd_reset() {
  cmd_down
  rm -rf "$DATA_DIR" "$CONFIG_FILE"
  say "data removed from $STATE_DIR (cluster id kept)"
}

# One `up`, `down` or `reset` at a time per node: test sessions started side by side must not
# format or start the same node twice.
lock_state() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/lock"
  flock -w 180 9 || die "another kafka.sh holds $STATE_DIR/lock"
}

main() {
  local command="${1:-}"
  shift || true
  case "$command" in
    fetch) cmd_fetch ;;
    up) lock_state && cmd_up ;;
    start) lock_state && cmd_start ;;
    down) lock_state && cmd_down ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    reset) lock_state && cmd_reset ;;
    *)
      echo "usage: $0 {fetch|up|start|down|status|logs [-f]|reset}" >&2
      exit 2
      ;;
  esac
}

main "$@"
