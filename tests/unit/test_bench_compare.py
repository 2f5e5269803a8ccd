"""bench.compare's arithmetic: the phases of a drain from its timeline, the means and ratios of
the two sides, and a baseline checkout's earn run from its own directory and environment."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.compare import FIGURES, Drain, phases, summary
from services.processes import ServiceProcess


def test_phases_split_the_drain_at_a_tenth_and_nine_tenths() -> None:
    # 1,000 entries: 100 by t=1, 900 by t=5, the last relayed at t=7; the first entry at t=0.
    timeline = [(0.5, 50), (1.0, 100), (3.0, 500), (5.0, 900), (6.0, 1000)]

    got = phases(timeline, first=0.0, done=7.0, total=1000)

    assert got["eps"] == pytest.approx(1000 / 7)
    assert got["steady_eps"] == pytest.approx(800 / 4)
    assert got["head_s"] == pytest.approx(1.0)
    assert got["tail_s"] == pytest.approx(2.0)


def _drain(side: str, value: float) -> Drain:
    return Drain(
        side,
        value,
        value,
        value,
        value,
        value,
        value,
        value,
        value,
        correct=True,
        redelivered=value,
    )


def test_summary_gives_each_sides_mean_and_this_over_the_baseline() -> None:
    drains = [_drain("baseline", 10), _drain("this", 9), _drain("baseline", 12), _drain("this", 13)]

    got = summary(drains)

    assert set(got) == set(FIGURES)
    for row in got.values():
        assert row["baseline"] == 11
        assert row["this"] == 11
        assert row["ratio"] == 1


def test_a_baseline_of_zero_has_no_ratio() -> None:
    got = summary([_drain("baseline", 0), _drain("this", 5)])

    assert math.isnan(got["eps"]["ratio"])


def test_a_checkouts_service_runs_its_own_interpreter_from_its_directory(tmp_path: Path) -> None:
    checkout = tmp_path / "base"
    (checkout / ".venv" / "bin").mkdir(parents=True)
    # An interpreter that reports where it runs and what it imports from, then exits.
    probe = checkout / ".venv" / "bin" / "python"
    report = tmp_path / "seen"
    probe.write_text(f'#!/bin/sh\necho "$PWD $PYTHONPATH $*" > {report}\n', encoding="utf-8")
    probe.chmod(0o755)

    process = ServiceProcess("earn", checkout=checkout).launch()
    assert process.process is not None
    process.process.wait(timeout=10)

    cwd, path, *argv = report.read_text(encoding="utf-8").split()
    assert (cwd, path) == (str(checkout), str(checkout))
    assert argv[:4] == ["-m", "services.cli", "run", "earn"]
