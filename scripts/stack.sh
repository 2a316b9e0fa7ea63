#!/usr/bin/env bash
# The local real stack: Apache Kafka (KRaft, one node) and NVIDIA Triton Inference Server.
#
#   scripts/stack.sh up [kafka|triton]   install what is missing, start what is not running, wait until ready
#   scripts/stack.sh down     stop what `up` started; no broker or server process is left behind
#   scripts/stack.sh status   report each service's state (exit 0 only when both are ready)
#   scripts/stack.sh install  only install (apt packages, Kafka jars, Python venv, model files)
#   scripts/stack.sh logs [kafka|triton]   print the last lines of a service's log (both by default)
#
# A second, independent stack (for a test that kills or reconfigures its broker or server without
# disturbing the shared one) takes other ports and its own state directory from the environment:
#   FRAMEWIRE_STACK_STATE, FRAMEWIRE_KAFKA_PORT, FRAMEWIRE_KAFKA_CONTROLLER_PORT,
#   FRAMEWIRE_TRITON_HTTP_PORT, FRAMEWIRE_TRITON_GRPC_PORT, FRAMEWIRE_TRITON_METRICS_PORT,
#   FRAMEWIRE_MODEL_REPO
# and a broker with secured listeners beside its PLAINTEXT one (the TLS/SASL tests) from:
#   FRAMEWIRE_KAFKA_EXTRA_LISTENERS  e.g. SASL_SSL://127.0.0.1:9294,SSL://127.0.0.1:9295 (the
#                                    listener name is its security protocol)
#   FRAMEWIRE_KAFKA_EXTRA_CONFIG     a properties file appended to server.properties (keystores,
#                                    JAAS, sasl.enabled.mechanisms, listener.name.* settings)
#   FRAMEWIRE_KAFKA_SCRAM            ';'-separated --add-scram credentials created when the storage
#                                    is formatted, e.g. SCRAM-SHA-512=[name=alice,password=secret]
#
# Large downloads live in a cache outside the clone ($FRAMEWIRE_CACHE, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/framewire); runtime state (data, logs, pids) in .stack/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FRAMEWIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/framewire}"
STATE="${FRAMEWIRE_STACK_STATE:-$ROOT/.stack}"
LOGS="$STATE/logs"

KAFKA_VERSION=3.9.1
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${FRAMEWIRE_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${FRAMEWIRE_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${FRAMEWIRE_KAFKA_HEAP:-512m}"

VENV="$CACHE/venv"
TRITON_BACKENDS="$CACHE/triton-backends"
MODEL_REPO="${FRAMEWIRE_MODEL_REPO:-$ROOT/deploy/triton/models}"
TRITON_HTTP="${FRAMEWIRE_TRITON_HTTP_PORT:-8000}"
TRITON_GRPC="${FRAMEWIRE_TRITON_GRPC_PORT:-8001}"
TRITON_METRICS="${FRAMEWIRE_TRITON_METRICS_PORT:-8002}"

READY_TIMEOUT_S="${FRAMEWIRE_READY_TIMEOUT:-180}"

log() { printf 'stack: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- install

apt_install() {
  # Installs Debian packages that are missing; `apt-get update` only when something is.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_system() {
  local pkgs=(ffmpeg python3 python3-venv libpython3-dev)
  # A live RTSP camera for the ingest tests (test/helpers/rtsp-server.py): GStreamer's RTSP
  # server, its Python bindings, and x264enc/rtph264pay/appsrc.
  pkgs+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-ugly gstreamer1.0-tools)
  # Headless Chromium for the dashboard test (driven by playwright-core from npm).
  pkgs+=(chromium)
  command -v java >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
  command -v curl >/dev/null 2>&1 || pkgs+=(curl)
  command -v flock >/dev/null 2>&1 || pkgs+=(util-linux)
  apt_install "${pkgs[@]}"
}

install_kafka() {
  [ -f "$KAFKA_LIBS/.complete" ] && return 0
  log "resolving Apache Kafka $KAFKA_VERSION broker jars from Maven Central"
  rm -rf "$KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" >&2
  ls "$KAFKA_LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "Kafka jars missing after Maven resolution"
  touch "$KAFKA_LIBS/.complete"
}

install_venv() {
  local req="$ROOT/scripts/requirements-triton.txt"
  local stamp
  stamp="$(sha256sum "$req" | cut -c1-16)"
  if [ ! -f "$VENV/.complete-$stamp" ]; then
    log "building the Triton Python environment in $VENV"
    # Added to in place, never removed first: a running Triton (another clone's stack on this
    # machine) may be using this environment, and clones on other branches keep their own stamps.
    # Debian's interpreter: the Python backend stub embeds a shared libpython of the same version.
    [ -x "$VENV/bin/python" ] || { rm -rf "$VENV"; /usr/bin/python3 -m venv "$VENV"; }
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
    touch "$VENV/.complete-$stamp"
  fi
  # A backend directory with the stub that matches the venv's Python (as PyTriton does).
  local site pyver dist
  pyver="$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  dist="$site/pytriton/tritonserver"
  if [ ! -x "$TRITON_BACKENDS/python/triton_python_backend_stub" ] || [ "$dist/bin/tritonserver" -nt "$TRITON_BACKENDS/python/.complete" ]; then
    rm -rf "$TRITON_BACKENDS"
    mkdir -p "$TRITON_BACKENDS/python"
    cp "$dist/backends/python/libtriton_python.so" "$dist/backends/python/triton_python_backend_utils.py" "$TRITON_BACKENDS/python/"
    cp "$dist/python_backend_stubs/$pyver/triton_python_backend_stub" "$TRITON_BACKENDS/python/"
    touch "$TRITON_BACKENDS/python/.complete"
  fi
}

install_models() {
  "$VENV/bin/python" "$ROOT/scripts/models/build.py" "$MODEL_REPO" >&2
}

# The readiness probe (scripts/kafka-ready.mjs) asks the broker for metadata with kafkajs: a
# fresh clone has no node_modules until npm ci, so install the locked packages first.
install_node() {
  [ -d "$ROOT/node_modules/kafkajs" ] && return 0
  log "installing the Node packages (npm ci) for the readiness probe"
  (cd "$ROOT" && npm ci --no-audit --no-fund --ignore-scripts >&2)
}

install_all() {
  install_system
  install_node
  install_kafka
  install_venv
  install_models
}

# ---------------------------------------------------------------- processes

pid_alive() { # pidfile
  [ -f "$1" ] || return 1
  local pid
  pid="$(cat "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

kafka_ready() { node "$ROOT/scripts/kafka-ready.mjs" "$KAFKA_HOST:$KAFKA_PORT" 2>/dev/null; }
triton_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$TRITON_HTTP/v2/health/ready")" = 200 ]; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_kafka() {
  local dir="$STATE/kafka"
  mkdir -p "$dir/data" "$LOGS"
  local listeners="PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT" protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT" extra l
  local -a extras=() scram=()
  [ -z "${FRAMEWIRE_KAFKA_EXTRA_LISTENERS:-}" ] || IFS=',' read -ra extras <<<"$FRAMEWIRE_KAFKA_EXTRA_LISTENERS"
  for l in "${extras[@]}"; do
    listeners+=",$l"
    protocols+=",${l%%://*}:${l%%://*}"
  done
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=$listeners,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
log.segment.bytes=67108864
message.max.bytes=2097152
# framewire stores per-stream resume points in offset-commit metadata.
offset.metadata.max.bytes=1048576
EOF
  if [ -n "${FRAMEWIRE_KAFKA_EXTRA_CONFIG:-}" ]; then
    extra="$FRAMEWIRE_KAFKA_EXTRA_CONFIG"
    [ -f "$extra" ] || die "FRAMEWIRE_KAFKA_EXTRA_CONFIG: no file $extra"
    { echo "# from $extra"; cat "$extra"; } >>"$dir/server.properties"
  fi
  [ -z "${FRAMEWIRE_KAFKA_SCRAM:-}" ] || { IFS=';' read -ra extras <<<"$FRAMEWIRE_KAFKA_SCRAM"; for l in "${extras[@]}"; do scram+=(--add-scram "$l"); done; }
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$LOGS/kafka.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
EOF
  local java_opts=(-Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Djava.awt.headless=true -Dlog4j.configuration="file:$dir/log4j.properties")
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$(java -cp "$KAFKA_LIBS/*" "${java_opts[@]}" kafka.tools.StorageTool random-uuid)"
    java -cp "$KAFKA_LIBS/*" "${java_opts[@]}" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$dir/server.properties" "${scram[@]}" >>"$LOGS/kafka-format.log" 2>&1 \
      || { tail -n 20 "$LOGS/kafka-format.log" >&2; die "formatting Kafka storage failed"; }
  fi
  log "starting Kafka $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT (heap $KAFKA_HEAP)"
  setsid nohup java -cp "$KAFKA_LIBS/*" "${java_opts[@]}" kafka.Kafka "$dir/server.properties" \
    >"$LOGS/kafka.out" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE/kafka.pid"
}

start_triton() {
  mkdir -p "$LOGS"
  local site
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  log "starting Triton on HTTP $TRITON_HTTP, gRPC $TRITON_GRPC, metrics $TRITON_METRICS ($MODEL_REPO)"
  # The binary's shared libraries ship beside it in nvidia_pytriton.libs; the Python backend's
  # stub finds numpy/onnxruntime through the venv on PATH and PYTHONPATH.
  LD_LIBRARY_PATH="$site/nvidia_pytriton.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  PATH="$VENV/bin:$PATH" PYTHONPATH="$site" \
  setsid nohup "$site/pytriton/tritonserver/bin/tritonserver" \
    --model-repository="$MODEL_REPO" \
    --backend-directory="$TRITON_BACKENDS" \
    --cache-directory="$site/pytriton/tritonserver/caches" \
    --http-address=127.0.0.1 --http-port=$TRITON_HTTP \
    --grpc-address=127.0.0.1 --grpc-port=$TRITON_GRPC \
    --metrics-address=127.0.0.1 --metrics-port=$TRITON_METRICS \
    --allow-gpu-metrics=false --exit-timeout-secs=10 \
    >"$LOGS/triton.log" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE/triton.pid"
}

wait_ready() { # name check-fn pidfile logfile
  local name="$1" check="$2" pidfile="$3" logfile="$4" waited=0
  until "$check"; do
    if ! pid_alive "$pidfile"; then
      log "$name exited during start; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 || true
      return 1
    fi
    if [ "$waited" -ge "$READY_TIMEOUT_S" ]; then
      log "$name not ready after ${READY_TIMEOUT_S}s; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 || true
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

stop_pid() { # name pidfile
  local name="$1" pidfile="$2"
  if pid_alive "$pidfile"; then
    local pid
    pid="$(cat "$pidfile")"
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 30s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

# ---------------------------------------------------------------- commands

cmd_up() { # [kafka|triton]: one service only (a second stack often needs just a broker)
  local t0=$SECONDS want_kafka=1 want_triton=1
  case "${1:-}" in kafka) want_triton=0 ;; triton) want_kafka=0 ;; "") ;; *) die "unknown service '$1' (kafka, triton)" ;; esac
  mkdir -p "$STATE" "$LOGS"
  if { [ $want_kafka = 0 ] || { pid_alive "$STATE/kafka.pid" && kafka_ready; }; } \
    && { [ $want_triton = 0 ] || { pid_alive "$STATE/triton.pid" && triton_ready; }; }; then
    log "already up (Kafka $KAFKA_HOST:$KAFKA_PORT, Triton 127.0.0.1:$TRITON_GRPC)"
    return 0
  fi
  # A broker alone (a test restarting its private one) needs neither the Python venv nor the models.
  if [ $want_triton = 1 ]; then install_all; else install_system; install_node; install_kafka; fi
  if [ $want_kafka = 1 ] && ! pid_alive "$STATE/kafka.pid"; then
    port_busy "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by a process this stack did not start"
    start_kafka
  fi
  if [ $want_triton = 1 ] && ! pid_alive "$STATE/triton.pid"; then
    port_busy "$TRITON_GRPC" && die "port $TRITON_GRPC is taken by a process this stack did not start"
    start_triton
  fi
  [ $want_kafka = 0 ] || wait_ready kafka kafka_ready "$STATE/kafka.pid" "$LOGS/kafka.log" || die "Kafka did not become ready"
  [ $want_triton = 0 ] || wait_ready triton triton_ready "$STATE/triton.pid" "$LOGS/triton.log" || die "Triton did not become ready"
  log "up in $((SECONDS - t0))s: Kafka $KAFKA_HOST:$KAFKA_PORT; Triton HTTP :$TRITON_HTTP gRPC :$TRITON_GRPC metrics :$TRITON_METRICS"
}

cmd_down() {
  stop_pid triton "$STATE/triton.pid"
  stop_pid kafka "$STATE/kafka.pid"
  log "down"
}

cmd_status() {
  local rc=0 k t
  if pid_alive "$STATE/kafka.pid"; then
    if kafka_ready; then k="ready"; else k="starting (pid $(cat "$STATE/kafka.pid"), not answering)"; rc=1; fi
  else
    k="stopped"; rc=1
  fi
  if pid_alive "$STATE/triton.pid"; then
    if triton_ready; then t="ready"; else t="starting (pid $(cat "$STATE/triton.pid"), not ready)"; rc=1; fi
  else
    t="stopped"; rc=1
  fi
  echo "kafka:  $k  ($KAFKA_HOST:$KAFKA_PORT)"
  echo "triton: $t  (http :$TRITON_HTTP, grpc :$TRITON_GRPC, metrics :$TRITON_METRICS)"
  return $rc
}

cmd_logs() { # [kafka|triton]
  local which="${1:-}" lines="${FRAMEWIRE_LOG_LINES:-50}"
  case "$which" in
    kafka) tail -n "$lines" "$LOGS/kafka.log" ;;
    triton) tail -n "$lines" "$LOGS/triton.log" ;;
    "") for f in kafka triton; do echo "==> $LOGS/$f.log <=="; tail -n "$lines" "$LOGS/$f.log" 2>/dev/null || echo "(no log yet)"; done ;;
    *) die "unknown service '$which' (kafka, triton)" ;;
  esac
}

main() {
  local cmd="${1:-status}"
  mkdir -p "$STATE"
  case "$cmd" in
    up|down|install)
      # One `up`/`down` at a time: concurrent test files may all ask for the stack.
      exec 9>"$STATE/stack.lock"
      flock 9
      case "$cmd" in up) cmd_up "${2:-}" ;; down) cmd_down ;; install) install_all ;; esac
      ;;
    status) cmd_status ;;
    logs) cmd_logs "${2:-}" ;;
    *) die "unknown command '$cmd' (up, down, status, install, logs)" ;;
  esac
}

main "$@"
