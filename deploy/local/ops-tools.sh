#!/usr/bin/env bash
# Tools that check the operations files, installed when missing; safe to run again.
#
#   deploy/local/ops-tools.sh [promtool|compose|chromium|all]
#
#   promtool        from Debian's prometheus package: checks deploy/prometheus (config, rules,
#                   rule unit tests) and the services' /metrics expositions
#   docker compose  the Compose v2 CLI plugin, built from its Go module (the Go toolchain and
#                   the Go module proxy are enough; no Docker engine is needed) so that
#                   `docker compose config` can check deploy/compose.yaml
#   chromium        Debian's package: the analytics tests open the HTML report headless
#
# Exit codes: 0 installed or already there; 1 failure.
set -euo pipefail

COMPOSE_VERSION=v2.40.3
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins

say() { printf 'ops-tools: %s\n' "$*" >&2; }

as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        say "root rights are needed for: $*"
        exit 1
    fi
}

install_promtool() {
    command -v promtool >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null 2>&1 || { say "promtool is missing and apt-get is unavailable"; exit 1; }
    say "installing promtool (Debian package prometheus)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq update >&2
    # Without recommends: the checker is wanted, not a node exporter.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -qq \
        --no-install-recommends install prometheus >&2
    command -v promtool >/dev/null 2>&1 || { say "prometheus installed but promtool not found"; exit 1; }
}

compose_present() {
    [[ -x "$PLUGIN_DIR/docker-compose" ]] || { command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }
}

install_compose() {
    compose_present && return 0
    local go
    go=$(command -v go || true)
    [[ -z "$go" && -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go
    [[ -n "$go" ]] || { say "docker compose is missing and there is no Go toolchain to build it"; exit 1; }
    local work
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    say "building docker compose $COMPOSE_VERSION from its Go module (a few minutes the first time)"
    (
        cd "$work"
        "$go" mod init loyalty-ops-tools >/dev/null 2>&1
        # `go install` refuses modules with exclude directives, so build inside a module of our own.
        GOFLAGS=-mod=mod "$go" get "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION" >&2
        GOFLAGS=-mod=mod "$go" build -trimpath \
            -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
            -o docker-compose github.com/docker/compose/v2/cmd >&2
    )
    as_root mkdir -p "$PLUGIN_DIR"
    as_root install -m 0755 "$work/docker-compose" "$PLUGIN_DIR/docker-compose"
    say "installed $PLUGIN_DIR/docker-compose"
}

install_chromium() {
    command -v chromium >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null 2>&1 || { say "chromium is missing and apt-get is unavailable"; exit 1; }
    say "installing chromium (Debian package)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -qq \
        --no-install-recommends install chromium >&2
    command -v chromium >/dev/null 2>&1 || { say "chromium installed but not found"; exit 1; }
}

case "${1:-all}" in
    promtool) install_promtool ;;
    compose) install_compose ;;
    chromium) install_chromium ;;
    all) install_promtool; install_compose; install_chromium ;;
    *) say "usage: $0 [promtool|compose|chromium|all]"; exit 1 ;;
esac
