#!/usr/bin/env bash
# The local stack on loopback: moto_server (DynamoDB, CloudWatch), the CBOR bridge in front of moto for
# aws-sdk-cloudwatch (tools/cloudwatch_bridge.py), the tasks and rollup tables, `cargo lambda watch`
# serving the functions (task-events, task-summary, task-rollups), and the stream poller that feeds the
# tasks table's stream to task-rollups as Lambda's event source mapping would (tests/src/bin/stream_poller.rs).
# Python tools live in .venv (pinned in tools/requirements.txt).
#
#   tools/stack.sh up            start what is not running; print `export NAME=value` lines on stdout
#   tools/stack.sh down          stop what `up` started
#   tools/stack.sh run CMD...    up, run CMD with the stack's environment, then stop what this call started
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/.local
mkdir -p "$STATE"
source "$ROOT/tools/venv.sh"

export LOCAL_AWS_PORT=${LOCAL_AWS_PORT:-5000}
export LAMBDA_INVOKE_PORT=${LAMBDA_INVOKE_PORT:-9000}
export LOCAL_CLOUDWATCH_PORT=${LOCAL_CLOUDWATCH_PORT:-5001}
export AWS_ENDPOINT_URL=http://127.0.0.1:$LOCAL_AWS_PORT
# aws-sdk-cloudwatch speaks Smithy RPC v2 CBOR, which moto does not: its calls go through the bridge.
export AWS_ENDPOINT_URL_CLOUDWATCH=http://127.0.0.1:$LOCAL_CLOUDWATCH_PORT
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export TABLE_NAME=${TABLE_NAME:-ecs-task-timing-tasks}
export ROLLUP_TABLE_NAME=${ROLLUP_TABLE_NAME:-ecs-task-timing-rollups}
export METRICS_NAMESPACE=${METRICS_NAMESPACE:-ECS/TaskTiming}
# The demo's indexed family: its tasks that pull with overlayfs count as lazy-loading fallbacks.
export LAZY_LOADING_FAMILIES=${LAZY_LOADING_FAMILIES:-checkout-soci}
export PATH=$VENV/bin:$PATH

log() { echo "stack: $*" >&2; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() { # port, seconds, what, log file
  local deadline=$((SECONDS + $2))
  until listening "$1"; do
    if ((SECONDS > deadline)); then
      log "$3 did not listen on 127.0.0.1:$1 within $2 s; last lines of $4:"
      tail -n 20 "$4" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

started=()

# A pid file per service and port: two stacks on other ports (LOCAL_AWS_PORT=…) must not stop each other's.
pidfile() { # name
  local port
  case $1 in
    moto | poller) port=$LOCAL_AWS_PORT ;;
    bridge) port=$LOCAL_CLOUDWATCH_PORT ;;
    watch) port=$LAMBDA_INVOKE_PORT ;;
  esac
  echo "$STATE/$1-$port.pid"
}

start_moto() {
  if listening "$LOCAL_AWS_PORT"; then
    log "reusing the service already on 127.0.0.1:$LOCAL_AWS_PORT"
    return
  fi
  # moto applying one request at a time: DynamoDB's conditional writes are atomic, threaded moto's are not.
  setsid python tools/moto_server.py 127.0.0.1 "$LOCAL_AWS_PORT" >"$STATE/moto.log" 2>&1 &
  echo $! >"$(pidfile moto)"
  started+=(moto)
  wait_for_port "$LOCAL_AWS_PORT" 60 moto_server "$STATE/moto.log"
}

start_bridge() {
  if listening "$LOCAL_CLOUDWATCH_PORT"; then
    log "reusing the CloudWatch bridge already on 127.0.0.1:$LOCAL_CLOUDWATCH_PORT"
    return
  fi
  setsid python tools/cloudwatch_bridge.py 127.0.0.1 "$LOCAL_CLOUDWATCH_PORT" "$AWS_ENDPOINT_URL" \
    >"$STATE/bridge.log" 2>&1 &
  echo $! >"$(pidfile bridge)"
  started+=(bridge)
  wait_for_port "$LOCAL_CLOUDWATCH_PORT" 30 "CloudWatch bridge" "$STATE/bridge.log"
}

start_watch() {
  if listening "$LAMBDA_INVOKE_PORT"; then
    log "reusing the Lambda emulator already on 127.0.0.1:$LAMBDA_INVOKE_PORT"
    return
  fi
  # Build first so the first invoke does not compile. No --ignore-changes: an emulator reused by a later
  # `make demo` or `make test` must serve the current code.
  cargo build -q -p task-events -p task-summary -p task-rollups >&2
  setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_INVOKE_PORT" \
    >"$STATE/watch.log" 2>&1 &
  echo $! >"$(pidfile watch)"
  started+=(watch)
  wait_for_port "$LAMBDA_INVOKE_PORT" 120 "cargo lambda watch" "$STATE/watch.log"
}

start_poller() {
  if [[ -f $(pidfile poller) ]] && kill -0 "$(cat "$(pidfile poller)")" 2>/dev/null; then
    log "reusing the stream poller already running"
    return
  fi
  cargo build -q -p task-timing-tests --bin stream_poller >&2
  setsid "${CARGO_TARGET_DIR:-$ROOT/target}/debug/stream_poller" follow >"$STATE/poller.log" 2>&1 &
  echo $! >"$(pidfile poller)"
  started+=(poller)
}

create_tables() {
  cargo run -q -p task-timing-tests --bin devtool -- create-tables >&2
}

stop() { # name
  local file
  file=$(pidfile "$1")
  [[ -f $file ]] || return 0
  # setsid made each service a process group leader: stop the group (cargo lambda watch spawns the function).
  kill -TERM -- "-$(cat "$file")" 2>/dev/null || true
  rm -f "$file"
}

up() {
  ensure_venv
  start_moto
  start_bridge
  create_tables
  start_watch
  start_poller
}

print_exports() {
  for name in AWS_ENDPOINT_URL AWS_ENDPOINT_URL_CLOUDWATCH AWS_REGION AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY TABLE_NAME ROLLUP_TABLE_NAME \
    METRICS_NAMESPACE LAZY_LOADING_FAMILIES LOCAL_AWS_PORT LOCAL_CLOUDWATCH_PORT LAMBDA_INVOKE_PORT; do
    echo "export $name=${!name}"
  done
  echo "export PATH=$VENV/bin:\$PATH"
}

case "${1:-}" in
  up)
    up
    print_exports
    ;;
  down)
    stop poller
    stop watch
    stop bridge
    stop moto
    ;;
  run)
    shift
    trap 'for s in "${started[@]}"; do stop "$s"; done' EXIT
    up
    "$@"
    ;;
  *)
    echo "usage: tools/stack.sh up | down | run CMD..." >&2
    exit 2
    ;;
esac
