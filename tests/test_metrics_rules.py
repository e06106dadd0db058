"""deploy/'s Prometheus alert rules and Grafana dashboard: the rule file has the shape Prometheus
loads (the checks ``promtool check rules`` makes of structure), every expression parses as
PromQL (promql-parser, the Rust parser Prometheus' own grammar was ported to), and every dbops
metric they name is one ``dbops serve`` exports and docs/metrics.md describes."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml

from bot.metrics.exporter import Metrics
from commands.config import parse_settings
from commands.pg.database import PgDatabases

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "dbops-alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dbops-dashboard.json"
DOC = ROOT / "docs" / "metrics.md"
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
# Grafana's variables, as it substitutes them before Prometheus sees the query.
GRAFANA = {"$__rate_interval": "1m", "$environment": "production"}


@functools.cache
def exported() -> frozenset[str]:
    """Every series name ``dbops serve`` can export (counters with _total, histograms' three)."""
    settings = parse_settings({"environments": {"production": {
        "database_url": "postgresql://dbops@db/app", "migrations_dir": str(ROOT / "deploy" / "demo" / "migrations"),
        "require_approval": [], "pre_migration_snapshot": False}}}, source="test", base_dir=ROOT, environ={})
    metrics = Metrics(settings, PgDatabases(application_name="dbops-test"), None)
    names = set()
    for family in [*metrics.registry.collect(), *metrics.facts_collector.describe()]:
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
        else:
            names.add(family.name)
    return frozenset(name for name in names if name.startswith("dbops_"))


def selectors(expr: str) -> set[str]:
    """The metric names an expression selects (fails the test if it does not parse)."""
    names: list[str] = []
    promql_parser.walk(promql_parser.parse(expr),
                       lambda node: names.append(node.name) if isinstance(node, promql_parser.VectorSelector) else None)
    return {n for n in names if n}


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    queries = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA.items():
                expr = expr.replace(variable, value)
            queries.append(expr)
    return queries


def test_the_rule_file_has_the_shape_prometheus_loads():
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names))  # promtool: groupname must be unique
    alerts = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert DURATION.match(rule.get("for", "0s")), rule["for"]
            assert rule["labels"]["severity"] in ("critical", "warning", "info")
            assert rule["annotations"]["summary"]
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_alert_expression_parses_and_names_only_exported_metrics(rule):
    named = selectors(rule["expr"])
    assert named and named <= exported(), named - exported()


def test_the_example_rules_cover_what_an_operator_must_hear_about():
    watched = set().union(*(selectors(rule["expr"]) for rule in rules()))
    assert {"dbops_migration_dirty", "dbops_snapshot_newest_age_seconds", "dbops_watcher_failures_total",
            "dbops_slack_api_errors_total", "dbops_approvals_pending_oldest_age_seconds",
            "dbops_drill_last_success_timestamp_seconds"} <= watched


def test_a_broken_expression_or_an_unknown_metric_would_be_caught():
    with pytest.raises(ValueError):
        selectors("max by (environment) (dbops_migration_dirty == 1")
    assert "dbops_migration_dirtyy" not in exported()


def test_every_dashboard_query_parses_and_names_only_exported_metrics():
    queries = dashboard_queries()
    assert queries
    for query in queries:
        named = selectors(query)
        assert named and named <= exported(), (query, named - exported())


def test_the_metrics_page_describes_every_metric_exported():
    documented = set(re.findall(r"`(dbops_[a-z_]+)`", DOC.read_text()))
    bases = {re.sub(r"_(bucket|count|sum)$", "", name) for name in exported()}
    assert bases - documented == set()
    assert documented - bases - exported() == set()  # nothing documented that is not exported
