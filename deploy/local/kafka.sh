#!/usr/bin/env bash
# Single-node Apache Kafka broker (KRaft, combined broker + controller) for local work, without Docker.
#
#   deploy/local/kafka.sh start|stop|status|logs [-f]
#
# The broker's classpath is resolved from Maven Central through deploy/local/kafka/pom.xml.
# State (jars, data, logs, configuration, pid file) lives in <repo>/.local/kafka/, or in
# LOYALTY_KAFKA_STATE_DIR, so that a second broker (the benchmark's) can run beside the first.
#
# Environment:
#   LOYALTY_KAFKA_PORT             client listener port on 127.0.0.1 (default 9092)
#   LOYALTY_KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1 (default 9093)
#   LOYALTY_KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default 60)
#   LOYALTY_KAFKA_STATE_DIR        where the broker's state lives (default <repo>/.local/kafka)
#   JAVA_HOME                      when set, $JAVA_HOME/bin/java is used instead of java on PATH
#
# Secure listeners, beside the PLAINTEXT one (off unless their port is set; the tests of TLS and
# SASL start a broker of their own with them):
#   LOYALTY_KAFKA_SASL_SSL_PORT    a SASL_SSL listener: SCRAM-SHA-256, SCRAM-SHA-512, and PLAIN
#                                  when LOYALTY_KAFKA_PLAIN_USERS is set
#   LOYALTY_KAFKA_SSL_PORT         an SSL listener that requires a client certificate (mutual TLS)
#                                  signed by LOYALTY_KAFKA_TLS_CA_FILE
#   LOYALTY_KAFKA_TLS_CERT_FILE    the broker's PEM certificate (chain), for both listeners
#   LOYALTY_KAFKA_TLS_KEY_FILE     its PEM private key, unencrypted (any format openssl reads)
#   LOYALTY_KAFKA_TLS_CA_FILE      PEM CA the SSL listener trusts client certificates from
#   LOYALTY_KAFKA_SCRAM_USERS      name:password[,name:password...] given SCRAM-SHA-256 and -512
#                                  credentials when the storage is formatted (first start of a
#                                  state directory: remove its data/ to change them)
#   LOYALTY_KAFKA_PLAIN_USERS      name:password[,...] accepted by the PLAIN mechanism
# Names and passwords are made of letters, digits and . _ - only. The broker is reached at
# 127.0.0.1 on every listener: its certificate must name that address.
#
# Exit codes: 0 success; 1 failure; 2 a port is taken by another process; 3 (status) not running.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd -P)
POM="$SCRIPT_DIR/kafka/pom.xml"
STATE="${LOYALTY_KAFKA_STATE_DIR:-$REPO_ROOT/.local/kafka}"
LIBS="$STATE/libs"
DATA="$STATE/data"
LOGS="$STATE/logs"
PROPS="$STATE/server.properties"
LOG4J="$STATE/log4j2.xml"
PIDFILE="$STATE/kafka.pid"
STAMP="$STATE/libs.sha256"
SERVER_LOG="$LOGS/server.log"
CONSOLE_LOG="$LOGS/console.log"
FORMAT_LOG="$LOGS/format.log"
VENV_PYTHON="$REPO_ROOT/.venv/bin/python"

HOST=127.0.0.1
PORT="${LOYALTY_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${LOYALTY_KAFKA_CONTROLLER_PORT:-9093}"
START_TIMEOUT="${LOYALTY_KAFKA_START_TIMEOUT:-60}"
SASL_SSL_PORT="${LOYALTY_KAFKA_SASL_SSL_PORT:-}"
SSL_PORT="${LOYALTY_KAFKA_SSL_PORT:-}"
TLS_CERT="${LOYALTY_KAFKA_TLS_CERT_FILE:-}"
TLS_KEY="${LOYALTY_KAFKA_TLS_KEY_FILE:-}"
TLS_CA="${LOYALTY_KAFKA_TLS_CA_FILE:-}"
SCRAM_USERS="${LOYALTY_KAFKA_SCRAM_USERS:-}"
PLAIN_USERS="${LOYALTY_KAFKA_PLAIN_USERS:-}"
TLS_DIR="$STATE/tls"
STOP_TIMEOUT=30

say() { printf 'kafka: %s\n' "$*"; }
warn() { printf 'kafka: %s\n' "$*" >&2; }
die() {
    local code=1
    if [[ $# -gt 1 && "$1" =~ ^[0-9]+$ ]]; then code=$1; shift; fi
    warn "$*"
    exit "$code"
}

usage() {
    cat >&2 <<EOF
usage: $0 start|stop|status|logs [-f]
  start   resolve the broker, format storage once, start it on $HOST:$PORT and wait until it answers
  stop    stop the broker (SIGTERM, then SIGKILL after ${STOP_TIMEOUT}s)
  status  exit 0 when the broker runs and answers, 3 otherwise
  logs    print the end of $SERVER_LOG (-f to follow)
EOF
    exit 1
}

check_port_number() {
    local name=$1 value=$2
    if ! [[ "$value" =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
        die "$name must be a TCP port number, got '$value'"
    fi
}

java_bin() {
    if [[ -n "${JAVA_HOME:-}" ]]; then
        [[ -x "$JAVA_HOME/bin/java" ]] || die "JAVA_HOME is set to '$JAVA_HOME' but $JAVA_HOME/bin/java is not executable; unset JAVA_HOME or fix it"
        printf '%s\n' "$JAVA_HOME/bin/java"
        return
    fi
    command -v java >/dev/null 2>&1 \
        || die "java not found on PATH: install a Java 17+ runtime (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
    command -v java
}

require_java() {
    JAVA=$(java_bin)
    local version major
    version=$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
    major=${version%%.*}
    [[ "$major" == 1 ]] && major=$(cut -d. -f2 <<<"$version")
    if [[ "$major" =~ ^[0-9]+$ ]] && ((major < 17)); then
        die "Kafka 4 needs Java 17 or newer, but $JAVA is version $version (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless)"
    fi
}

# --- processes and ports ---------------------------------------------------------------------

# True when $1 is a live process started by this script (its command line names our configuration).
is_our_broker() {
    local pid=$1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "kafka.Kafka $PROPS"
}

# Pid of the process listening on TCP port $1, if ss can tell.
port_owner_pid() {
    command -v ss >/dev/null 2>&1 || return 0
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

port_owner_desc() {
    local pid
    pid=$(port_owner_pid "$1")
    if [[ -n "$pid" ]]; then
        printf 'pid %s: %s' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160)"
    else
        printf 'unknown process'
    fi
}

port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" >/dev/null 2>&1
}

# The broker answers a metadata request (through aiokafka when the project virtualenv exists).
kafka_answers() {
    port_open "$PORT" || return 1
    [[ -x "$VENV_PYTHON" ]] || return 0
    timeout 20 "$VENV_PYTHON" - "$HOST:$PORT" >/dev/null 2>&1 <<'PY'
import asyncio
import sys

from aiokafka.admin import AIOKafkaAdminClient


async def main() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


asyncio.run(main())
PY
}

# Pid of our running broker: from the pid file, or adopted from the port owner when the file was lost.
running_pid() {
    local pid=""
    [[ -f "$PIDFILE" ]] && pid=$(tr -dc '0-9' <"$PIDFILE")
    if [[ -n "$pid" ]] && is_our_broker "$pid"; then
        printf '%s\n' "$pid"
        return 0
    fi
    pid=$(port_owner_pid "$PORT")
    if [[ -n "$pid" ]] && is_our_broker "$pid"; then
        mkdir -p "$STATE"
        printf '%s\n' "$pid" >"$PIDFILE"
        printf '%s\n' "$pid"
        return 0
    fi
    return 1
}

# Byte offset of server.log when this start began: only newer lines are shown on failure.
LOG_OFFSET=0

tail_log() {
    local file
    for file in "$FORMAT_LOG" "$CONSOLE_LOG"; do
        if [[ -s "$file" ]]; then
            warn "--- last lines of $file ---"
            tail -n 40 "$file" >&2
        fi
    done
    if [[ -s "$SERVER_LOG" ]] && (($(stat -c %s "$SERVER_LOG") > LOG_OFFSET)); then
        warn "--- last lines of $SERVER_LOG ---"
        tail -c +$((LOG_OFFSET + 1)) "$SERVER_LOG" | tail -n 40 >&2
    fi
}

# --- setup -----------------------------------------------------------------------------------

ensure_libs() {
    local want have=""
    want=$(sha256sum "$POM" | cut -d' ' -f1)
    [[ -f "$STAMP" ]] && have=$(cat "$STAMP")
    if [[ "$want" == "$have" ]] && compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 \
        || die "mvn not found on PATH: install Apache Maven 3.6+ (Debian/Ubuntu: apt-get install -y maven); it resolves the broker jars from Maven Central"
    say "resolving the broker classpath from $POM (first run may take a few minutes)"
    rm -rf "$LIBS.tmp"
    if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$LIBS.tmp" >"$LOGS/mvn.log" 2>&1; then
        rm -rf "$LIBS.tmp"
        tail -n 30 "$LOGS/mvn.log" >&2
        die "mvn could not resolve the broker classpath (is Maven Central reachable? full output in $LOGS/mvn.log)"
    fi
    rm -rf "$LIBS"
    mv "$LIBS.tmp" "$LIBS"
    printf '%s\n' "$want" >"$STAMP"
}

# --- secure listeners ------------------------------------------------------------------------

secure_listeners() { [[ -n "$SASL_SSL_PORT$SSL_PORT" ]]; }

# "name:password,..." -> "name password" lines, refusing what the configuration cannot quote.
users() {
    local list=$1 setting=$2 entry entries
    IFS=',' read -ra entries <<<"$list"
    for entry in "${entries[@]}"; do
        [[ "$entry" =~ ^([A-Za-z0-9._-]+):([A-Za-z0-9._-]+)$ ]] \
            || die "$setting: each entry must be name:password (letters, digits, . _ -)"
        printf '%s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    done
}

check_secure_settings() {
    secure_listeners || return 0
    local name value
    for name in LOYALTY_KAFKA_SASL_SSL_PORT LOYALTY_KAFKA_SSL_PORT; do
        value=${!name:-}
        [[ -z "$value" ]] || check_port_number "$name" "$value"
    done
    for name in LOYALTY_KAFKA_TLS_CERT_FILE LOYALTY_KAFKA_TLS_KEY_FILE; do
        value=${!name:-}
        [[ -n "$value" ]] || die "$name is needed by the secure listeners"
        [[ -r "$value" ]] || die "$name=$value: the file cannot be read"
    done
    if [[ -n "$SSL_PORT" ]]; then
        [[ -n "$TLS_CA" ]] || die "LOYALTY_KAFKA_TLS_CA_FILE is needed by the SSL listener (LOYALTY_KAFKA_SSL_PORT)"
        [[ -r "$TLS_CA" ]] || die "LOYALTY_KAFKA_TLS_CA_FILE=$TLS_CA: the file cannot be read"
    fi
    [[ -z "$SCRAM_USERS" ]] || users "$SCRAM_USERS" LOYALTY_KAFKA_SCRAM_USERS >/dev/null
    [[ -z "$PLAIN_USERS" ]] || users "$PLAIN_USERS" LOYALTY_KAFKA_PLAIN_USERS >/dev/null
    command -v openssl >/dev/null 2>&1 || die "openssl not found on PATH: it converts the broker's key to PKCS#8"
}

# Kafka reads a PEM key store as one file: the key in PKCS#8, then the certificate chain.
write_tls_stores() {
    secure_listeners || return 0
    mkdir -p "$TLS_DIR"
    chmod 700 "$TLS_DIR"
    (
        umask 077
        openssl pkcs8 -topk8 -nocrypt -in "$TLS_KEY" -out "$TLS_DIR/broker.pem" 2>"$LOGS/openssl.log" \
            || die "LOYALTY_KAFKA_TLS_KEY_FILE=$TLS_KEY: openssl cannot read the key (see $LOGS/openssl.log)"
        cat "$TLS_CERT" >>"$TLS_DIR/broker.pem"
        [[ -z "$TLS_CA" ]] || cp "$TLS_CA" "$TLS_DIR/ca.pem"
    )
}

# The lines of server.properties that the secure listeners add.
secure_config() {
    local mechanisms=SCRAM-SHA-256,SCRAM-SHA-512 jaas name password
    printf 'ssl.keystore.type=PEM\nssl.keystore.location=%s\n' "$TLS_DIR/broker.pem"
    if [[ -n "$SSL_PORT" ]]; then
        printf 'ssl.truststore.type=PEM\nssl.truststore.location=%s\n' "$TLS_DIR/ca.pem"
        printf 'listener.name.ssl.ssl.client.auth=required\n'
    fi
    [[ -n "$SASL_SSL_PORT" ]] || return 0
    [[ -z "$PLAIN_USERS" ]] || mechanisms+=,PLAIN
    printf 'listener.name.sasl_ssl.sasl.enabled.mechanisms=%s\n' "$mechanisms"
    for name in scram-sha-256 scram-sha-512; do
        printf 'listener.name.sasl_ssl.%s.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n' "$name"
    done
    if [[ -n "$PLAIN_USERS" ]]; then
        jaas="org.apache.kafka.common.security.plain.PlainLoginModule required"
        while read -r name password; do
            jaas+=" user_$name=\"$password\""
        done < <(users "$PLAIN_USERS" LOYALTY_KAFKA_PLAIN_USERS)
        printf 'listener.name.sasl_ssl.plain.sasl.jaas.config=%s;\n' "$jaas"
    fi
}

# --- configuration ---------------------------------------------------------------------------

write_config() {
    local listeners="" protocols=""
    [[ -z "$SASL_SSL_PORT" ]] || { listeners+=",SASL_SSL://$HOST:$SASL_SSL_PORT"; protocols+=",SASL_SSL:SASL_SSL"; }
    [[ -z "$SSL_PORT" ]] || { listeners+=",SSL://$HOST:$SSL_PORT"; protocols+=",SSL:SSL"; }
    if secure_listeners; then
        # Only its owner reads it: the PLAIN users' passwords are in it.
        rm -f "$PROPS"
        (umask 077 && : >"$PROPS")
    fi
    cat >"$PROPS" <<EOF
# Written by deploy/local/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT$listeners
advertised.listeners=PLAINTEXT://$HOST:$PORT$listeners
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT$protocols
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Offset commits are written at once instead of lingering to batch with others (5 ms by default):
# consumers commit after every batch, and wait for it.
group.coordinator.append.linger.ms=0
# Records stamped ahead of the broker's clock are kept (Kafka 4 refuses more than an hour by
# default): the test suite also runs under clocks shifted ahead (make test-clocks), and its
# producers stamp records with the time they see.
log.message.timestamp.after.max.ms=9223372036854775807
EOF
    if secure_listeners; then
        secure_config >>"$PROPS"
    fi
    cat >"$LOG4J" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by deploy/local/kafka.sh: broker logs go to a file, nothing to the console. -->
<Configuration status="WARN">
  <Appenders>
    <File name="server" fileName="$SERVER_LOG" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Root level="INFO">
      <AppenderRef ref="server"/>
    </Root>
  </Loggers>
</Configuration>
EOF
}

format_storage() {
    [[ -f "$DATA/meta.properties" ]] && return 0
    local cluster_id name password scram=()
    if [[ -n "$SCRAM_USERS" ]]; then
        while read -r name password; do
            scram+=(--add-scram "SCRAM-SHA-256=[name=$name,password=$password]")
            scram+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$password]")
        done < <(users "$SCRAM_USERS" LOYALTY_KAFKA_SCRAM_USERS)
    fi
    say "formatting storage in $DATA"
    cluster_id=$("$JAVA" -Dlog4j2.configurationFile="$LOG4J" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>"$FORMAT_LOG") \
        || { tail_log; die "could not create a cluster id"; }
    "$JAVA" -Dlog4j2.configurationFile="$LOG4J" -cp "$LIBS/*" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$PROPS" "${scram[@]}" >>"$FORMAT_LOG" 2>&1 \
        || { tail_log; die "could not format storage in $DATA"; }
}

wait_until_ready() {
    local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            tail_log
            die "the broker (pid $pid) exited during start-up"
        fi
        if kafka_answers; then
            say "running (pid $pid) on $HOST:$PORT"
            return 0
        fi
        sleep 1
    done
    tail_log
    die "the broker (pid $pid) did not answer on $HOST:$PORT within ${START_TIMEOUT}s; it is left running, see $SERVER_LOG or run '$0 stop'"
}

# Serialises start and stop, so concurrent callers leave exactly one broker.
take_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w $((START_TIMEOUT + 120)) 9 || die "timed out waiting for another kafka.sh start/stop to finish"
    fi
}

# --- commands --------------------------------------------------------------------------------

# Client port of the running broker, read from the configuration it was started with.
running_port() {
    sed -n 's/^listeners=PLAINTEXT:\/\/[^:]*:\([0-9]*\),.*/\1/p' "$PROPS" 2>/dev/null | head -n1
}

cmd_start() {
    local pid port
    take_lock
    if pid=$(running_pid); then
        port=$(running_port)
        if [[ -n "$port" && "$port" != "$PORT" ]]; then
            die "our broker already runs (pid $pid) on $HOST:$port, not on the requested port $PORT; run '$0 stop' first"
        fi
        if kafka_answers; then
            say "already running (pid $pid) on $HOST:$PORT"
            return 0
        fi
        say "starting already (pid $pid); waiting for it to answer"
        wait_until_ready "$pid"
        return 0
    fi
    rm -f "$PIDFILE" "$FORMAT_LOG"
    for port in "$PORT" "$CONTROLLER_PORT" $SASL_SSL_PORT $SSL_PORT; do
        if port_open "$port" || [[ -n "$(port_owner_pid "$port")" ]]; then
            die 2 "port $HOST:$port is already in use by another process ($(port_owner_desc "$port")); stop it or set LOYALTY_KAFKA_PORT / LOYALTY_KAFKA_CONTROLLER_PORT"
        fi
    done

    check_secure_settings
    require_java
    mkdir -p "$STATE" "$DATA" "$LOGS"
    ensure_libs
    write_tls_stores
    write_config
    format_storage

    say "starting the broker on $HOST:$PORT (controller $HOST:$CONTROLLER_PORT)"
    : >"$CONSOLE_LOG"
    [[ -f "$SERVER_LOG" ]] && LOG_OFFSET=$(stat -c %s "$SERVER_LOG")
    cd "$STATE"
    nohup "$JAVA" -Xms256m -Xmx512m \
        -Dlog4j2.configurationFile="$LOG4J" \
        -cp "$LIBS/*" kafka.Kafka "$PROPS" \
        </dev/null >>"$CONSOLE_LOG" 2>&1 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
    wait_until_ready "$pid"
}

cmd_stop() {
    local pid deadline
    take_lock
    if ! pid=$(running_pid); then
        rm -f "$PIDFILE"
        say "not running"
        return 0
    fi
    say "stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    rm -f "$PIDFILE"
    say "stopped"
}

cmd_status() {
    local pid
    if pid=$(running_pid); then
        if kafka_answers; then
            say "running (pid $pid) on $HOST:$PORT"
            return 0
        fi
        say "process $pid is alive but the broker does not answer on $HOST:$PORT"
        return 3
    fi
    say "not running"
    return 3
}

cmd_logs() {
    [[ -f "$SERVER_LOG" ]] || die "no log yet at $SERVER_LOG"
    if [[ "${1:-}" == "-f" ]]; then
        exec tail -n 100 -F "$SERVER_LOG"
    fi
    tail -n 100 "$SERVER_LOG"
}

check_port_number LOYALTY_KAFKA_PORT "$PORT"
check_port_number LOYALTY_KAFKA_CONTROLLER_PORT "$CONTROLLER_PORT"
[[ "$PORT" != "$CONTROLLER_PORT" ]] || die "LOYALTY_KAFKA_PORT and LOYALTY_KAFKA_CONTROLLER_PORT must differ"

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    logs) shift; cmd_logs "$@" ;;
    *) usage ;;
esac
