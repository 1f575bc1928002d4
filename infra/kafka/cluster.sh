#!/usr/bin/env bash
# A three-node KRaft cluster on loopback ports, each node both broker and controller, run by
# kafka.sh once per node: replication factor 3, min.insync.replicas 2, unclean leader
# election off. This is how the scale-out and broker-fault tests run, and a rehearsal of a
# real cluster (docs/operations.md).
#
#   infra/kafka/cluster.sh up | down | status | reset | bootstrap
#   infra/kafka/cluster.sh node N <kafka.sh command>     e.g. `node 2 down` to stop one node
#
# Environment: KAFKA_CLUSTER_BASE_PORT [29092]: node N listens on BASE + 2(N-1) for clients
# and on the port above it for the controllers; state in $KEEPER_STATE/cluster/nodeN.
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
STATE="${KEEPER_STATE:-$REPO_ROOT/.local}/cluster"
BASE="${KAFKA_CLUSTER_BASE_PORT:-29092}"
NODES=(1 2 3)
KAFKA="$SCRIPT_DIR/kafka.sh"

client_port() { echo $((BASE + 2 * ($1 - 1))); }
controller_port() { echo $(($(client_port "$1") + 1)); }

bootstrap() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("127.0.0.1:$(client_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

# Identity shared by the nodes, made once: the cluster id and each controller's directory id.
identity() {
  mkdir -p "$STATE"
  if [[ ! -s "$STATE/identity" ]]; then
    "$KAFKA" fetch >/dev/null
    local gen n ids=() voters=()
    gen() { java -cp "${KEEPER_CACHE:-$HOME/.cache/keeper}/kafka-$(. "$SCRIPT_DIR/versions.env"; echo "$KAFKA_VERSION")/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1; }
    local cluster_id
    cluster_id="$(gen)"
    for n in "${NODES[@]}"; do
      ids[n]="$(gen)"
      voters+=("$n@127.0.0.1:$(controller_port "$n"):${ids[n]}")
    done
    {
      echo "CLUSTER_ID=$cluster_id"
      echo "VOTERS=$(IFS=,; echo "${voters[*]}")"
    } >"$STATE/identity"
  fi
  # shellcheck disable=SC1091
  . "$STATE/identity"
}

node_env() {
  local n=$1 quorum=() m
  for m in "${NODES[@]}"; do quorum+=("127.0.0.1:$(controller_port "$m")"); done
  export KAFKA_STATE_DIR="$STATE/node$n" KAFKA_NODE_ID="$n" \
    KAFKA_PORT="$(client_port "$n")" KAFKA_CONTROLLER_PORT="$(controller_port "$n")" \
    KAFKA_QUORUM_BOOTSTRAP="$(IFS=,; echo "${quorum[*]}")" \
    KAFKA_CLUSTER_ID="$CLUSTER_ID" KAFKA_INITIAL_CONTROLLERS="$VOTERS" \
    KAFKA_REPLICATION_FACTOR=3 KAFKA_MIN_INSYNC_REPLICAS=2 \
    KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms192m -Xmx384m}"
}

on_node() { (identity; node_env "$1"; shift; "$KAFKA" "$@"); }

case "${1:-}" in
  up)
    identity
    # All three first: a node answers only once a majority of the controllers runs.
    for n in "${NODES[@]}"; do on_node "$n" start; done
    for n in "${NODES[@]}"; do on_node "$n" up; done
    echo "cluster: up; bootstrap $(bootstrap)"
    ;;
  down) for n in "${NODES[@]}"; do on_node "$n" down || true; done ;;
  status)
    rc=0
    for n in "${NODES[@]}"; do on_node "$n" status || rc=1; done
    exit $rc
    ;;
  reset) for n in "${NODES[@]}"; do on_node "$n" reset; done; rm -f "$STATE/identity" ;;
  bootstrap) bootstrap ;;
  node)
    [[ $# -ge 3 ]] || { echo "usage: $0 node N <kafka.sh command>" >&2; exit 2; }
    n=$2
    shift 2
    on_node "$n" "$@"
    ;;
  *) echo "usage: $0 up|down|status|reset|bootstrap|node N <command>" >&2; exit 2 ;;
esac
