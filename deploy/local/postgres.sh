#!/usr/bin/env bash
# Local PostgreSQL for the loyalty engine, without Docker: Debian's packaged cluster, or an existing server.
#
#   deploy/local/postgres.sh start|stop|status|url
#
# When LOYALTY_DATABASE_URL is set, that server is used as it is: start and status only check that
# it answers, url prints it, stop does nothing. Otherwise Debian's `postgresql` package is installed
# when missing, its `main` cluster is started on 127.0.0.1:$LOYALTY_PG_PORT, and role `loyalty`
# (password `loyalty`, LOGIN CREATEDB) and database `loyalty` owned by it are created when missing.
#
# Environment:
#   LOYALTY_DATABASE_URL  an existing server to use instead of the local cluster
#   LOYALTY_PG_PORT       port of the local cluster (default 5432)
#
# Exit codes: 0 success; 1 failure; 2 the port is taken by another server; 3 (status) not answering.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT="${LOYALTY_PG_PORT:-5432}"
PG_ROLE=loyalty
PG_PASSWORD=loyalty
PG_DATABASE=loyalty
CLUSTER=main
MAX_CONNECTIONS=200
START_TIMEOUT=60
LOCAL_URL="postgresql://$PG_ROLE:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DATABASE"

say() { printf 'postgres: %s\n' "$*" >&2; }
die() {
    local code=1
    if [[ $# -gt 1 && "$1" =~ ^[0-9]+$ ]]; then code=$1; shift; fi
    say "$*"
    exit "$code"
}

usage() {
    cat >&2 <<EOF
usage: $0 start|stop|status|url
  start   make sure a PostgreSQL server answers with role and database '$PG_DATABASE'; prints its URL
  stop    stop the local cluster (nothing when LOYALTY_DATABASE_URL is set)
  status  exit 0 when the database answers, 3 otherwise
  url     print the database URL
EOF
    exit 1
}

if ! [[ "$PG_PORT" =~ ^[0-9]+$ ]] || ((PG_PORT < 1 || PG_PORT > 65535)); then
    die "LOYALTY_PG_PORT must be a TCP port number, got '$PG_PORT'"
fi

as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "root rights are needed for: $*; run as root or install sudo"
    fi
}

# Runs a command as the postgres OS user, from a directory it can read.
as_postgres() {
    if [[ "$(id -un)" == postgres ]]; then
        (cd / && "$@")
    elif ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    elif command -v sudo >/dev/null 2>&1; then
        (cd / && sudo -u postgres -- "$@")
    else
        die "cannot run commands as the postgres user: run as root or install sudo"
    fi
}

# psql as the postgres superuser over the Unix socket (peer authentication); SQL comes from the arguments or stdin.
psql_admin() {
    as_postgres psql -X -q -At -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$PG_PORT" -d postgres "$@"
}

have_client() {
    command -v psql >/dev/null 2>&1 || command -v pg_isready >/dev/null 2>&1
}

# True when the URL accepts a connection (and runs a query, when psql is there).
url_answers() {
    local url=$1
    if command -v psql >/dev/null 2>&1; then
        PGCONNECT_TIMEOUT=5 psql -X -q -At "$url" -c 'select 1' >/dev/null 2>&1
    elif command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -t 5 -d "$url" >/dev/null 2>&1
    else
        return 1
    fi
}

port_in_use() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$PG_HOST/$PG_PORT" >/dev/null 2>&1
}

port_owner_desc() {
    local pid=""
    command -v ss >/dev/null 2>&1 && pid=$(ss -Hltnp "sport = :$PG_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)
    if [[ -n "$pid" ]]; then
        printf 'pid %s: %s' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
    else
        printf 'unknown process'
    fi
}

# Highest PostgreSQL major version whose server binaries are installed.
installed_version() {
    local dir
    for dir in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x "$dir" ]] && basename "$(dirname "$(dirname "$dir")")"
    done | sort -n | tail -n1
}

wait_for_dpkg() {
    local lock deadline=$((SECONDS + 900)) busy
    while ((SECONDS < deadline)); do
        busy=""
        for lock in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock; do
            if command -v fuser >/dev/null 2>&1 && fuser "$lock" >/dev/null 2>&1; then busy=$lock; fi
        done
        [[ -z "$busy" ]] && pgrep -x 'apt-get|apt|dpkg' >/dev/null 2>&1 && busy="a running apt/dpkg"
        [[ -z "$busy" ]] && return 0
        say "waiting for $busy to be released (another package installation is running)"
        sleep 5
    done
    die "package manager still busy after 15 minutes"
}

ensure_installed() {
    [[ -n "$(installed_version)" ]] && command -v pg_lsclusters >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null 2>&1 \
        || die "PostgreSQL server binaries not found and apt-get is unavailable: install PostgreSQL 15+ or set LOYALTY_DATABASE_URL"
    wait_for_dpkg
    if [[ -z "$(installed_version)" ]] || ! command -v pg_lsclusters >/dev/null 2>&1; then
        say "installing Debian's postgresql package"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq update >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -qq install postgresql >&2
    fi
    [[ -n "$(installed_version)" ]] || die "postgresql was installed but no server binaries were found under /usr/lib/postgresql"
}

# Prints "<version> <port> <status>" of our cluster, if it exists.
cluster_line() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    { pg_lsclusters -h 2>/dev/null || true; } | awk -v c="$CLUSTER" '$2 == c {print $1, $3, $4}' | sort -n | tail -n1
}

ensure_cluster() {
    local line version port status
    line=$(cluster_line)
    if [[ -z "$line" ]]; then
        version=$(installed_version)
        say "creating cluster $version/$CLUSTER on port $PG_PORT"
        as_root pg_createcluster -p "$PG_PORT" "$version" "$CLUSTER" >&2
        line=$(cluster_line)
    fi
    read -r version port status <<<"$line"
    if [[ "$port" != "$PG_PORT" || "$status" != online* ]] && port_in_use; then
        die 2 "port $PG_HOST:$PG_PORT is already in use by another process ($(port_owner_desc)); stop it, set LOYALTY_PG_PORT, or point LOYALTY_DATABASE_URL at that server"
    fi
    if [[ "$port" != "$PG_PORT" ]]; then
        say "moving cluster $version/$CLUSTER from port $port to $PG_PORT"
        if [[ "$status" == online* ]]; then as_root pg_ctlcluster "$version" "$CLUSTER" stop; fi
        as_root pg_conftool "$version" "$CLUSTER" set port "$PG_PORT"
        status=down
    fi
    if [[ "$status" != online* ]]; then
        say "starting cluster $version/$CLUSTER on $PG_HOST:$PG_PORT"
        as_root pg_ctlcluster "$version" "$CLUSTER" start \
            || die "could not start cluster $version/$CLUSTER; see /var/log/postgresql/postgresql-$version-$CLUSTER.log"
    fi
    wait_until_ready "$version"
    CLUSTER_VERSION=$version
}

wait_until_ready() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; do
        ((SECONDS < deadline)) || {
            tail -n 20 "/var/log/postgresql/postgresql-$1-$CLUSTER.log" >&2 2>/dev/null || true
            die "cluster $1/$CLUSTER does not answer on $PG_HOST:$PG_PORT after ${START_TIMEOUT}s"
        }
        sleep 1
    done
}

# max_connections high enough for several services and their tests; TLS off, because this
# cluster listens on loopback only and encryption there costs CPU and buys nothing.
ensure_server_settings() {
    local current ssl restart=0
    current=$(psql_admin -c 'SHOW max_connections')
    if ((current < MAX_CONNECTIONS)); then
        say "raising max_connections from $current to $MAX_CONNECTIONS"
        psql_admin -c "ALTER SYSTEM SET max_connections = $MAX_CONNECTIONS" >/dev/null
        restart=1
    fi
    ssl=$(psql_admin -c 'SHOW ssl')
    if [[ "$ssl" != "off" ]]; then
        say "turning TLS off on the loopback-only cluster"
        psql_admin -c "ALTER SYSTEM SET ssl = off" >/dev/null
        restart=1
    fi
    if ((restart)); then
        as_root pg_ctlcluster "$CLUSTER_VERSION" "$CLUSTER" restart
        wait_until_ready "$CLUSTER_VERSION"
    fi
}

ensure_role_and_database() {
    psql_admin >/dev/null <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '$PG_ROLE') THEN
        CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
    ELSE
        ALTER ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
    END IF;
END
\$\$;
SELECT 'CREATE DATABASE $PG_DATABASE OWNER $PG_ROLE'
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = '$PG_DATABASE')\\gexec
SQL
}

cmd_start() {
    if [[ -n "${LOYALTY_DATABASE_URL:-}" ]]; then
        have_client || die "LOYALTY_DATABASE_URL is set but neither psql nor pg_isready is installed to check it (Debian/Ubuntu: apt-get install -y postgresql-client)"
        url_answers "$LOYALTY_DATABASE_URL" \
            || die "LOYALTY_DATABASE_URL is set but that server does not answer; fix it or unset it to use the local cluster"
        printf '%s\n' "$LOYALTY_DATABASE_URL"
        return 0
    fi
    if url_answers "$LOCAL_URL" && [[ -n "$(cluster_line)" ]]; then
        # Fast path: already running and provisioned.
        local current ssl
        current=$(PGCONNECT_TIMEOUT=5 psql -X -q -At "$LOCAL_URL" -c 'SHOW max_connections' 2>/dev/null || echo 0)
        ssl=$(PGCONNECT_TIMEOUT=5 psql -X -q -At "$LOCAL_URL" -c 'SHOW ssl' 2>/dev/null || echo on)
        if ((current >= MAX_CONNECTIONS)) && [[ "$ssl" == "off" ]]; then
            printf '%s\n' "$LOCAL_URL"
            return 0
        fi
    fi
    ensure_installed
    ensure_cluster
    ensure_server_settings
    ensure_role_and_database
    url_answers "$LOCAL_URL" \
        || die "the cluster runs but $PG_ROLE cannot log in over TCP on $PG_HOST:$PG_PORT; check pg_hba.conf of cluster $CLUSTER_VERSION/$CLUSTER"
    say "ready on $PG_HOST:$PG_PORT, database $PG_DATABASE"
    printf '%s\n' "$LOCAL_URL"
}

cmd_stop() {
    if [[ -n "${LOYALTY_DATABASE_URL:-}" ]]; then
        say "LOYALTY_DATABASE_URL is set: that server is not managed here, nothing to stop"
        return 0
    fi
    local line version port status
    line=$(cluster_line 2>/dev/null || true)
    read -r version port status <<<"$line"
    if [[ "${status:-}" == online* ]]; then
        as_root pg_ctlcluster "$version" "$CLUSTER" stop
        say "stopped cluster $version/$CLUSTER"
    else
        say "not running"
    fi
}

cmd_status() {
    local url=${LOYALTY_DATABASE_URL:-$LOCAL_URL} where="$PG_HOST:$PG_PORT"
    [[ -n "${LOYALTY_DATABASE_URL:-}" ]] && where="the server of LOYALTY_DATABASE_URL"
    have_client || die 3 "neither psql nor pg_isready is installed: cannot check (run '$0 start')"
    if url_answers "$url"; then
        say "database answers on $where"
        return 0
    fi
    say "database does not answer on $where"
    return 3
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) printf '%s\n' "${LOYALTY_DATABASE_URL:-$LOCAL_URL}" ;;
    *) usage ;;
esac
