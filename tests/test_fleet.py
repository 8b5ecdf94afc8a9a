"""The fleet (`make fleet`, deploy/fleet/) on the real binaries: two sites of one landscape each, an agent pair per
site, the central Prometheus with the generated rules, two clustered Alertmanagers, a webhook receiver here.

What differs from `make fleet`, and why (to keep the module at about two minutes):
  - scrape, evaluation and check intervals are 1s; remote_write sends a partial batch after 1s and retries
    after at most 1s;
  - the rules are generated from the shipped thresholds with ErpExporterDown's `for` at 1s (2m shipped);
  - Prometheus re-sends alerts every second (--rules.alert.resend-delay=1s, see toolchain notes), and the
    second Alertmanager waits 2s for its peer's notification (--cluster.peer-timeout=2s; 15s by default);
  - Alertmanager is the shipped configuration with local webhooks and group_wait/group_interval of 1s.

Each test puts back what it broke (the part it killed is started again), so the tests are independent.
Durations are measured and reported (record_property and the printed lines), never asserted.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerting_rules import load_thresholds, write_rules
from alerting_stack import Notification, WebhookReceiver, alertmanager_test_config, http_get_json, wait_for

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy" / "fleet"))

from fleet import Fleet, FleetSpec, exporter_binary  # noqa: E402
from fleet_configs import Intervals, unclosed_work_orders  # noqa: E402

INTERVAL = 1.0  # seconds: scrape, evaluation and check interval
# An outage "longer than several scrape intervals": the agent or the central is away for this many scrapes.
OUTAGE_SCRAPES = 8
# With one replica writing, consecutive samples are one interval apart; a missed scrape would make a gap of two.
NO_GAP = 1.5 * INTERVAL
# The second Alertmanager's wait for its peer (flag below); a duplicate would come within it.
PEER_TIMEOUT = 2.0


@dataclass
class Stack:
    fleet: Fleet
    webhook: WebhookReceiver

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        answer = http_get_json(f"{self.fleet.central_url}/api/v1/query?{urllib.parse.urlencode(params)}")
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def samples(self, selector: str, start: float, end: float) -> dict[tuple[tuple[str, str], ...], list[float]]:
        """The raw sample timestamps of every series of `selector` between start and end."""
        window = int(end - start) + 2
        found = {}
        for series in self.query(f"{selector}[{window}s]", at=end):
            key = tuple(sorted(series["metric"].items()))
            found[key] = [float(t) for t, _ in series["values"] if start <= float(t) <= end]
        return found

    def newest(self, selector: str) -> float:
        """The newest sample's timestamp among the series of `selector` (0 without any)."""
        result = self.query(f"max(timestamp({selector}))")
        return float(result[0]["value"][1]) if result else 0.0

    def firing(self, alertname: str) -> list[dict[str, str]]:
        alerts = http_get_json(f"{self.fleet.central_url}/api/v1/alerts")["data"]["alerts"]
        return [a["labels"] for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]

    def alertmanager_alerts(self, index: int, alertname: str) -> list[dict[str, Any]]:
        query = urllib.parse.quote(f'alertname="{alertname}"')
        found: list[dict[str, Any]] = http_get_json(f"{self.fleet.alertmanager_url(index)}/api/v2/alerts?"
                                                    f"filter={query}")  # fmt: skip
        return found


def max_gap(timestamps: list[float]) -> float:
    ordered = sorted(timestamps)
    return max((b - a for a, b in pairwise(ordered)), default=float("inf"))


def agent_newest_seconds(fleet: Fleet, name: str) -> float:
    """The newest sample the agent has scraped into its WAL (its own /metrics)."""
    agent = next(a for a in fleet.agents if a.name == name)
    text = urllib.request.urlopen(f"http://127.0.0.1:{agent.port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith("prometheus_remote_storage_highest_timestamp_in_seconds "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def exporter_down(site: str, since: float) -> Any:
    """Firing notifications of ErpExporterDown for the site whose alert started after `since` (Unix seconds).

    The start time tells this alert apart from an earlier one of the same group: a member that was still in its
    peer wait when the earlier alert resolved can send one late "firing" for that earlier alert (its startsAt is
    older; docs/scaling.md, Alertmanager clustering)."""
    def matches(n: Notification) -> bool:
        return n.status == "firing" and any(
            a["labels"]["alertname"] == "ErpExporterDown" and a["labels"].get("site") == site
            and datetime.fromisoformat(a["startsAt"]).timestamp() >= since
            for a in n.payload["alerts"])
    return matches


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("fleet")
    thresholds = load_thresholds()
    thresholds["alerts"]["ErpExporterDown"]["for"] = "1s"
    write_rules(workdir / "rules", thresholds)
    spec = FleetSpec(
        var=workdir / "var", sites=2, landscapes_per_site=1, host_metrics=False, rules_dir=workdir / "rules",
        intervals=Intervals(scrape="1s", evaluation="1s", check="1s", batch_send_deadline="1s",
                            min_backoff="50ms", max_backoff="1s"),
        central_flags=["--rules.alert.resend-delay=1s"],
        alertmanager_flags=[f"--cluster.peer-timeout={PEER_TIMEOUT:g}s"],
        # an agent stopped while the central is away gives up its unsent queue after 2s, not 1m
        agent_flags=["--storage.remote.flush-deadline=2s"],
    )  # fmt: skip
    with WebhookReceiver() as webhook:
        fleet = Fleet(spec, alertmanager_test_config(webhook))
        fleet.start()
        try:
            stack = Stack(fleet, webhook)
            for site in ("site-1", "site-2"):
                wait_for(lambda site=site: stack.query(f'erp_up{{site="{site}"}} == 1'), 30,
                         f"no erp_up of {site} at the central Prometheus")  # fmt: skip
            yield stack
        finally:
            fleet.stop()


def wait_healthy(stack: Stack) -> None:
    """Every part runs and no ErpExporterDown is left in Prometheus or either Alertmanager."""
    assert stack.fleet.dead() == []
    wait_for(lambda: not stack.firing("ErpExporterDown")
             and not any(stack.alertmanager_alerts(i, "ErpExporterDown") for i in (0, 1)), 30,
             "ErpExporterDown did not clear")  # fmt: skip


# -- one series per landscape ------------------------------------------------------------------------------------


def test_every_landscape_arrives_once_at_the_central_with_its_site_and_landscape(stack: Stack) -> None:
    series = stack.query('erp_up{job="erp-exporter"}')
    assert sorted((s["metric"]["site"], s["metric"]["landscape"]) for s in series) == [
        ("site-1", "site-1-l1"), ("site-2", "site-2-l1")]
    assert all("replica" not in s["metric"] for s in series)


def test_the_agents_own_series_keep_their_replica(stack: Stack) -> None:
    series = wait_for(lambda: len(stack.query('up{job="prometheus-agent"}')) == 4
                      and stack.query('up{job="prometheus-agent"}'), 30, "not every agent's own up")
    assert sorted((s["metric"]["site"], s["metric"]["replica"]) for s in series) == [
        ("site-1", "a"), ("site-1", "b"), ("site-2", "a"), ("site-2", "b")]


def test_both_replicas_write_into_the_one_series_without_a_refused_sample(stack: Stack) -> None:
    def last_ten_seconds() -> list[float]:
        end = stack.newest('erp_up{site="site-1"}')
        (timestamps,) = stack.samples('erp_up{site="site-1"}', end - 10, end).values()
        return timestamps

    # two scrapes per interval (one by each replica) in one series, none refused as out of order or duplicate
    wait_for(lambda: len(last_ten_seconds()) >= 2 * 9, 30, "fewer than two samples per interval")
    assert stack.query("sum(prometheus_tsdb_out_of_order_samples_total)")[0]["value"][1] == "0"
    assert stack.query("sum(prometheus_remote_storage_samples_failed_total)")[0]["value"][1] == "0"


def test_a_recording_rule_gives_one_series_per_landscape_with_the_landscape_s_own_value(stack: Stack) -> None:
    def by_landscape() -> dict[str, float]:
        return {s["metric"]["landscape"]: float(s["value"][1])
                for s in stack.query('erp:audit_violations:sum_by_owner{owner="production"}')}  # fmt: skip

    found = wait_for(lambda: len(by_landscape()) == 2 and by_landscape(), 30, "no recording rule result")
    assert found == {name: unclosed_work_orders(name) for name in ("site-1-l1", "site-2-l1")}
    assert all("replica" not in s["metric"] for s in stack.query("erp:audit_violations:sum_by_owner"))


# -- faults --------------------------------------------------------------------------------------------------------


def test_one_agent_of_a_pair_killed_leaves_no_gap_and_no_doubled_rule_results_for_its_site(
    stack: Stack, record_property: Any
) -> None:
    wait_healthy(stack)
    fleet = stack.fleet
    killed_at = time.time()
    fleet.part("agent-site-1-a").kill()
    try:
        wait_for(lambda: stack.newest('erp_up{site="site-1"}') >= killed_at + OUTAGE_SCRAPES * INTERVAL, 60,
                 "the other replica did not keep writing")  # fmt: skip
        end = killed_at + OUTAGE_SCRAPES * INTERVAL
        raw = stack.samples('up{job="erp-exporter", site="site-1"}', killed_at - 2, end)
        rule = stack.samples('erp:audit_violations:sum_by_owner{site="site-1"}', killed_at, end)
        values = {float(v) for s in stack.query('erp:audit_violations:sum_by_owner{site="site-1"}[10s]', at=end)
                  for _, v in s["values"]}  # fmt: skip
    finally:
        fleet.restart("agent-site-1-a")
    (timestamps,) = raw.values()
    record_property("agent_killed_max_gap_seconds", round(max_gap(timestamps), 3))
    print(f"\nagent killed for {OUTAGE_SCRAPES} scrapes: largest gap in site-1's up {max_gap(timestamps):.3f}s "
          f"({len(timestamps)} samples)")
    assert max_gap(timestamps) < NO_GAP
    assert len(rule) == 1  # one series for the landscape, as before the kill
    assert values == {float(unclosed_work_orders("site-1-l1"))}  # never twice the value


def test_central_stopped_and_restarted_gets_the_agents_backlog_for_the_outage(
    stack: Stack, record_property: Any
) -> None:
    wait_healthy(stack)
    fleet = stack.fleet
    stopped_at = time.time()
    fleet.part("central").stop()
    try:
        # the agents go on scraping into their WAL, which they cannot send: wait for OUTAGE_SCRAPES of it
        wait_for(lambda: all(agent_newest_seconds(fleet, a.name) >= stopped_at + OUTAGE_SCRAPES * INTERVAL
                             for a in fleet.agents), 60, "the agents did not scrape on")  # fmt: skip
    finally:
        fleet.restart("central")
    restarted_at, restarted = time.time(), time.monotonic()
    for site in ("site-1", "site-2"):
        wait_for(lambda site=site: stack.newest(f'erp_up{{site="{site}"}}') >= restarted_at, 60,
                 f"{site}'s backlog did not arrive")  # fmt: skip
    caught_up = time.monotonic() - restarted
    found = stack.samples('erp_up{job="erp-exporter"}', stopped_at - 2, restarted_at)
    gaps = {dict(key)["site"]: max_gap(timestamps) for key, timestamps in found.items()}
    record_property("central_outage_seconds", round(restarted_at - stopped_at, 1))
    record_property("central_backlog_caught_up_seconds", round(caught_up, 2))
    print(f"\ncentral away {restarted_at - stopped_at:.1f}s; backlog in {caught_up:.2f}s after it was ready; "
          f"largest gaps over the outage: {gaps}")
    assert sorted(gaps) == ["site-1", "site-2"]
    assert all(gap < NO_GAP for gap in gaps.values()), gaps


def test_a_landscape_s_exporter_down_fires_erp_exporter_down_for_its_site_only(stack: Stack) -> None:
    wait_healthy(stack)
    fleet = stack.fleet
    fleet.part("exporter-site-2-l1").kill()
    try:
        firing = wait_for(lambda: stack.firing("ErpExporterDown"), 30, "ErpExporterDown did not fire")
        time.sleep(3 * INTERVAL)  # give the other site's alert every chance to (wrongly) appear
        firing = stack.firing("ErpExporterDown")
    finally:
        fleet.restart("exporter-site-2-l1")
    assert [(a["site"], a["landscape"]) for a in firing] == [("site-2", "site-2-l1")]
    assert "replica" not in firing[0]


def test_one_alert_through_the_clustered_alertmanagers_is_one_notification(
    stack: Stack, record_property: Any
) -> None:
    wait_healthy(stack)
    fleet = stack.fleet
    stopped_at, stopped = time.time(), time.monotonic()
    fleet.part("exporter-site-2-l1").kill()
    try:
        first = stack.webhook.wait(exporter_down("site-2", since=stopped_at), timeout=60)
        record_property("exporter_killed_to_notification_seconds", round(first.received - stopped, 2))
        print(f"\nexporter killed -> notification (both members up) {first.received - stopped:.2f}s")
        # Prometheus sends every alert to both members (not a load balancer), so both hold it
        wait_for(lambda: all(stack.alertmanager_alerts(i, "ErpExporterDown") for i in (0, 1)), 30,
                 "not both Alertmanagers have the alert")  # fmt: skip
        # the member that did not send waits PEER_TIMEOUT for the other's entry in the gossiped notification
        # log; three heartbeats (2s apart) after the first notification, its copy would have come
        for count in range(1, 4):
            stack.webhook.wait(lambda n: n.receiver == "heartbeat", timeout=30, after=first.received + count * 2.0)
    finally:
        fleet.restart("exporter-site-2-l1")
    assert len(stack.webhook.received(exporter_down("site-2", since=stopped_at))) == 1
    assert first.receiver == "line2-erp-admins"


def test_with_one_alertmanager_killed_the_notification_still_arrives_once(
    stack: Stack, record_property: Any
) -> None:
    wait_healthy(stack)
    fleet = stack.fleet
    fleet.part("alertmanager-1").kill()
    stopped_at, stopped = time.time(), time.monotonic()
    fleet.part("exporter-site-1-l1").kill()
    try:
        first = stack.webhook.wait(exporter_down("site-1", since=stopped_at), timeout=60)
        record_property("exporter_killed_to_notification_seconds", round(first.received - stopped, 2))
        print(f"\nexporter killed -> notification (one member killed) {first.received - stopped:.2f}s")
        for count in range(1, 4):
            stack.webhook.wait(lambda n: n.receiver == "heartbeat", timeout=30, after=first.received + count * 2.0)
    finally:
        fleet.restart("exporter-site-1-l1")
        fleet.restart("alertmanager-1")
    assert len(stack.webhook.received(exporter_down("site-1", since=stopped_at))) == 1
    assert first.payload["externalURL"] == fleet.alertmanager_url(1)  # the member left sent it


# -- the rules keep the fleet's labels ------------------------------------------------------------------------------


def test_every_aggregation_and_join_of_the_generated_rules_keeps_site_and_landscape() -> None:
    clauses = []
    for path in sorted((REPO / "alert_rules").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                clauses += [(rule.get("alert") or rule["record"], m.group(0))
                            for m in re.finditer(r"\b(by|on) \(([^)]*)\)", rule["expr"])]  # fmt: skip
    assert clauses, "no by/on clause found"
    assert [(name, clause) for name, clause in clauses if not clause.split("(")[1].startswith("site, landscape")] == []


def test_every_recorded_series_at_the_central_carries_site_and_landscape(stack: Stack) -> None:
    recorded = wait_for(lambda: stack.query('{__name__=~"erp:.+"}'), 30, "no recording rule result")
    assert [s["metric"] for s in recorded if not {"site", "landscape"} <= set(s["metric"])] == []


def test_the_health_report_of_one_site_lists_only_that_site_s_landscapes(stack: Stack) -> None:
    done = subprocess.run(
        [exporter_binary(), "report", "health", f"--prometheus.url={stack.fleet.central_url}", "--range=5m",
         "--site=site-1", "--format=json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["filters"] == {"site": "site-1"}
    assert {row["subject"] for row in document["rows"] if row["section"] == "targets"} == {"erp-site-1-l1"}


def test_the_report_names_the_sites_that_exist_for_an_unknown_one(stack: Stack) -> None:
    done = subprocess.run(
        [exporter_binary(), "report", "health", f"--prometheus.url={stack.fleet.central_url}", "--range=5m",
         "--site=site-9"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "--site 'site-9': no series over the range has it; sites with data: site-1, site-2" in done.stderr
