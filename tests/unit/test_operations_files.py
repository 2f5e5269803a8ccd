"""The Prometheus, Grafana and compose files are valid and speak of metrics the code defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from ops import PROMETHEUS, REPO, compose_command, promtool, run
from prometheus_client import REGISTRY

import shared.metrics  # noqa: F401 - registers every metric in the default registry

DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
IDENTIFIER = re.compile(r"\b(loyalty_[a-z_]+)")


def defined_series() -> set[str]:
    """Every sample name the services can expose (counters' _total, histograms' _bucket...)."""
    names = set()
    for collector in list(REGISTRY._collector_to_names):
        names.update(REGISTRY._collector_to_names[collector])
    return names


def dashboard_expressions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        found[path.name] = [
            target["expr"] for panel in board["panels"] for target in panel.get("targets", [])
        ]
    return found


def test_prometheus_configurations_are_valid() -> None:
    for name in ("prometheus.yml", "prometheus.local.yml"):
        checked = run(promtool(), "check", "config", str(PROMETHEUS / name))
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alert_rules_are_valid_and_pass_their_unit_tests() -> None:
    checked = run(promtool(), "check", "rules", str(PROMETHEUS / "alerts.yml"))
    tested = run(promtool(), "test", "rules", str(PROMETHEUS / "alerts.test.yml"))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_unit_test_and_a_runbook() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    tested = {a["alertname"] for t in tests["tests"] for a in t.get("alert_rule_test", [])}
    runbook = (REPO / "docs" / "operations.md").read_text()

    assert alerts == tested
    for alert in alerts:
        assert f"### {alert}" in runbook, f"docs/operations.md has no runbook for {alert}"


def test_alerts_and_dashboards_use_only_metrics_the_code_defines() -> None:
    rules = (PROMETHEUS / "alerts.yml").read_text()
    used = set(IDENTIFIER.findall(rules))
    for expressions in dashboard_expressions().values():
        for expr in expressions:
            used.update(IDENTIFIER.findall(expr))

    assert used
    assert used <= defined_series(), sorted(used - defined_series())


def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    # promtool evaluates each query on an empty database: a query that does not parse fails.
    cases = [
        {"expr": expr.replace("$__range", "1h"), "eval_time": "1m", "exp_samples": []}
        for expressions in dashboard_expressions().values()
        for expr in expressions
    ]
    test_file = tmp_path / "dashboards.test.yml"
    test_file.write_text(
        json.dumps({"tests": [{"interval": "1m", "input_series": [], "promql_expr_test": cases}]})
    )

    tested = run(promtool(), "test", "rules", str(test_file))

    assert len(cases) > 30
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_dashboards_are_provisioned_with_unique_ids_from_the_mounted_folder() -> None:
    boards = [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "loyalty.yml").read_text())
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]

    assert {b["uid"] for b in boards} == {
        "loyalty-earn",
        "loyalty-tiering",
        "loyalty-notify",
        "loyalty-overview",
    }
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    uids = {s["uid"] for s in source["datasources"]}
    for board in boards:
        for panel in board["panels"]:
            assert panel.get("datasource", {"uid": "prometheus"})["uid"] in uids


def test_compose_file_passes_docker_compose_config() -> None:
    checked = run(*compose_command(), "-f", "deploy/compose.yaml", "config", "--quiet")
    services = run(*compose_command(), "-f", "deploy/compose.yaml", "config", "--services")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert {"prometheus", "grafana", "earn", "tiering", "notify", "analytics"} <= set(
        services.stdout.split()
    )
