#!/usr/bin/env bash
# The test suite under shifted clocks: the suite must pass on any date, at any hour and in any
# time zone, so it also runs where the machine's clock and zone say otherwise.
#
#   tests/shifted_clocks.sh [PYTEST ARGS...]      (make test-clocks)
#
# Each run shifts the wall clock of pytest and of every Python process it starts (the services
# of the e2e tests) by one offset, so they all agree with each other (time-machine, started by
# tests/shifted_clock/sitecustomize.py; libfaketime cannot be used: under it Python's sleeps and
# lock timeouts fail or hang), and sets the time zone (TZ):
#   - 05:00 tomorrow in Asia/Ho_Chi_Minh (inside the default quiet hours, before the day starts),
#   - 22:30 tomorrow in Asia/Ho_Chi_Minh (late evening: quiet hours, and a UTC date that differs),
#   - a year from now in America/New_York (a zone behind UTC, a date no test was written on).
# Kafka and PostgreSQL keep the machine's real clock, as servers elsewhere would: they are
# started first, outside the shifted clocks (the local broker accepts records stamped ahead).
#
# Exit code: 0 when every run passed; otherwise the first failing run's pytest exit code.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'shifted-clocks: %s\n' "$*" >&2; }

# The infrastructure of the unshifted world, found through the environment by every run.
if [[ -z "${LOYALTY_DATABASE_URL:-}" ]]; then
    LOYALTY_DATABASE_URL=$(bash deploy/local/postgres.sh start | tail -n 1)
fi
if [[ -z "${LOYALTY_KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    bash deploy/local/kafka.sh start >&2
    LOYALTY_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:${LOYALTY_KAFKA_PORT:-9092}"
fi
export LOYALTY_DATABASE_URL LOYALTY_KAFKA_BOOTSTRAP_SERVERS

clocks=(
    "Asia/Ho_Chi_Minh|tomorrow 05:00"
    "Asia/Ho_Chi_Minh|tomorrow 22:30"
    "America/New_York|now + 1 year"
)

status=0
for clock in "${clocks[@]}"; do
    zone=${clock%%|*}
    when=${clock#*|}
    offset=$(($(TZ=$zone date -d "$when" +%s) - $(date +%s)))
    say "running the suite at $(TZ=$zone date -d "@$(($(date +%s) + offset))" '+%F %T %Z') ($zone)"
    shifted=(env TZ="$zone" LOYALTY_TEST_CLOCK_OFFSET_S="$offset"
        PYTHONPATH="$PWD/tests/shifted_clock${PYTHONPATH:+:$PYTHONPATH}")
    # The shift must be in force, or the run would prove nothing.
    seen=$("${shifted[@]}" .venv/bin/python -c 'import time; print(int(time.time()))')
    if ((seen - $(date +%s) < offset - 60 || seen - $(date +%s) > offset + 60)); then
        say "the clock is not shifted (Python sees $seen): is time-machine installed?"
        exit 1
    fi
    # time-machine is imported before pytest, which would warn that it cannot rewrite its asserts.
    if "${shifted[@]}" .venv/bin/pytest \
        -W "ignore:Module already imported so cannot be rewritten; time_machine:pytest.PytestAssertRewriteWarning" \
        "$@"; then
        say "passed at $when in $zone"
    else
        code=$?
        say "FAILED at $when in $zone (pytest exit $code)"
        ((status != 0)) || status=$code
    fi
done
exit "$status"
