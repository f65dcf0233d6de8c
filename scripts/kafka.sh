#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft: broker and controller in one JVM) for
# Riffle's integration tests, the demo and users, run from its Maven Central jars: no Docker, no
# release tarball. Needs Java 17+ and Maven (scripts/install_deps.sh installs both).
#
#   scripts/kafka.sh install      fetch the jars once into $RIFFLE_KAFKA_LIBS
#                                 (default <repo>/.kafka/libs); fast when already there
#   scripts/kafka.sh start DIR    start a broker whose state lives in DIR (created if needed) on
#                                 free loopback ports, wait until it serves, print its bootstrap
#                                 address (127.0.0.1:PORT) on stdout; if DIR's broker already
#                                 runs, just print its address
#   scripts/kafka.sh stop DIR     SIGTERM the broker, wait for it to exit (SIGKILL after
#                                 $KAFKA_STOP_TIMEOUT s); a no-op when it is not running
#   scripts/kafka.sh status DIR   print the bootstrap address and exit 0 if DIR's broker runs
#
# DIR holds server.properties, data/ (the log dirs), logs/server.log, stdout.log, kafka.pid,
# kafka.port and bootstrap (the address). Progress goes to stderr, so
#   bootstrap=$(scripts/kafka.sh start /tmp/k)
# works. Environment: RIFFLE_KAFKA_LIBS, KAFKA_PORT and KAFKA_CONTROLLER_PORT (fixed ports
# instead of free ones), KAFKA_START_TIMEOUT (seconds, default 180), KAFKA_STOP_TIMEOUT (default
# 60), KAFKA_HEAP_OPTS (default -Xms256m -Xmx512m).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POM="$ROOT/scripts/kafka/pom.xml"
LOG4J_CONFIG="$ROOT/scripts/kafka/log4j2.properties"
LIBS=${RIFFLE_KAFKA_LIBS:-$ROOT/.kafka/libs}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-180}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-60}
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
# The line KafkaRaftServer logs once the broker and controller serve requests.
READY_LINE='Kafka Server started'

log() { echo "kafka.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The stamp names the POM's checksum, so editing the POM (a new Kafka version) refetches.
pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }

cmd_install() {
  local stamp="$LIBS/.riffle-complete"
  if [[ -f $stamp && $(cat "$stamp") == "$(pom_sum)" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: run scripts/install_deps.sh"
  log "fetching the Kafka broker jars into $LIBS (Maven Central)"
  local parent tmp
  parent=$(dirname "$LIBS")
  mkdir -p "$parent"
  tmp=$(mktemp -d "$parent/.libs.XXXXXX")
  chmod 755 "$tmp" # mktemp makes it private; other users may run the broker
  # Fetch into a temporary directory and rename, so an interrupted fetch never looks complete.
  if ! mvn -B -q -f "$POM" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >&2; then
    rm -rf "$tmp"
    die "mvn copy-dependencies failed for $POM"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || {
    rm -rf "$tmp"
    die "no kafka_2.13 jar after the fetch"
  }
  pom_sum >"$tmp/.riffle-complete"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  log "installed $(find "$LIBS" -name '*.jar' | wc -l) jars"
}

# Is the process in DIR/kafka.pid alive and our broker (not a recycled pid)?
running_pid() {
  local dir=$1 pid
  [[ -f $dir/kafka.pid ]] || return 1
  pid=$(cat "$dir/kafka.pid")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A loopback port nothing listens on, from the range above the usual ephemeral ports' start
# and away from Kafka's defaults (9092/9093).
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    if ! port_in_use "$p" && [[ $p != "${1:-}" ]]; then
      echo "$p"
      return 0
    fi
  done
  die "no free loopback port found"
}

# A Kafka cluster id: a random UUID in URL-safe base64 without padding (22 characters), what
# `StorageTool random-uuid` prints, without starting a JVM for it.
cluster_id() {
  head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

write_properties() {
  local dir=$1 port=$2 cport=$3
  cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka.sh: a single-node KRaft broker for tests, on loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=true
# One node: every internal topic with one replica and few partitions (the defaults, 50
# partitions and a 3 s rebalance delay, only slow a test broker down).
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

# Starts the JVM once; returns 0 when ready, 1 when it died (the caller may retry with other
# ports), and exits on a timeout.
launch() {
  local dir=$1 port=$2 cport=$3 pid deadline
  write_properties "$dir" "$port" "$cport"
  local cp="$LIBS/*"
  local jvm=(java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$dir/logs" -cp "$cp")
  # Static voters (controller.quorum.voters), so format needs no --standalone;
  # --ignore-formatted keeps a restart on an existing DIR (same cluster id) working.
  if [[ ! -f $dir/data/meta.properties ]]; then
    log "formatting $dir/data"
    "${jvm[@]}" kafka.tools.StorageTool format -t "$(cluster_id)" -c "$dir/server.properties" \
      --ignore-formatted >"$dir/format.log" 2>&1 || {
      cat "$dir/format.log" >&2
      die "StorageTool format failed (log: $dir/format.log)"
    }
  fi
  : >"$dir/logs/server.log"
  nohup "${jvm[@]}" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/kafka.pid"
  log "broker pid $pid on 127.0.0.1:$port (controller $cport), waiting until it serves"
  deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$dir/kafka.pid"
      return 1
    fi
    # Ready: the broker says so and its listener accepts connections (and, when kcat is
    # installed, answers a metadata request).
    if grep -q "$READY_LINE" "$dir/logs/server.log" 2>/dev/null && port_in_use "$port"; then
      if ! command -v kcat >/dev/null ||
        kcat -b "127.0.0.1:$port" -L -m 5 >/dev/null 2>&1; then
        return 0
      fi
    fi
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/kafka.pid"
  tail -n 30 "$dir/stdout.log" >&2 || true
  die "the broker did not start within ${START_TIMEOUT}s (logs: $dir/logs/server.log, $dir/stdout.log)"
}

cmd_start() {
  local dir=${1:-}
  [[ -n $dir ]] || usage
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if running_pid "$dir" >/dev/null; then
    log "already running in $dir"
    cat "$dir/bootstrap"
    return 0
  fi
  command -v java >/dev/null || die "java not found: run scripts/install_deps.sh"
  cmd_install
  mkdir -p "$dir/data" "$dir/logs"
  local started=$SECONDS attempt port cport
  for attempt in 1 2 3; do
    # A restarted DIR keeps its ports: the formatted metadata log names the controller voter.
    if [[ -f $dir/kafka.port && -f $dir/kafka.controller_port ]]; then
      port=$(cat "$dir/kafka.port")
      cport=$(cat "$dir/kafka.controller_port")
    else
      port=${KAFKA_PORT:-$(free_port)}
      cport=${KAFKA_CONTROLLER_PORT:-$(free_port "$port")}
    fi
    echo "$port" >"$dir/kafka.port"
    echo "$cport" >"$dir/kafka.controller_port"
    if launch "$dir" "$port" "$cport"; then
      echo "127.0.0.1:$port" >"$dir/bootstrap"
      log "ready in $((SECONDS - started))s"
      echo "127.0.0.1:$port"
      return 0
    fi
    # Lost a race for a port: pick new ones on a fresh storage directory.
    if grep -q 'BindException\|Address already in use' "$dir/stdout.log" "$dir/logs/server.log" \
      2>/dev/null && [[ -z ${KAFKA_PORT:-} ]]; then
      log "port taken, retrying with other ports"
      rm -rf "$dir/data" "$dir/kafka.port" "$dir/kafka.controller_port"
      mkdir -p "$dir/data"
      continue
    fi
    break
  done
  tail -n 30 "$dir/stdout.log" >&2 || true
  die "the broker exited during startup (logs: $dir/logs/server.log, $dir/stdout.log)"
}

cmd_stop() {
  local dir=${1:-} pid deadline
  [[ -n $dir ]] || usage
  if ! pid=$(running_pid "$dir"); then
    rm -f "$dir/kafka.pid"
    return 0
  fi
  log "stopping broker pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "no exit after ${STOP_TIMEOUT}s, SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/kafka.pid"
}

cmd_status() {
  local dir=${1:-}
  [[ -n $dir ]] || usage
  running_pid "$dir" >/dev/null || {
    log "not running in $dir"
    return 1
  }
  cat "$dir/bootstrap"
}

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  *) usage ;;
esac
