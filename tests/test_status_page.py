"""The status page reads the store's results and the metrics' declared roles, never check or metric names."""

from __future__ import annotations

from exporter.checks.base import ErrorReason
from exporter.checks.db_response import UP
from exporter.checks.privileges import CAN_WRITE
from exporter.db.connstr import ConnectionSpec
from exporter.db.pool import Backoff
from exporter.db.target import TargetDatabase
from exporter.http.status_page import StatusView, render_status_page
from exporter.metrics import MetricFamily, Sample
from exporter.store import CheckKey, CheckMeta, CheckState


def database(name: str) -> TargetDatabase:
    spec = ConnectionSpec(
        driver="SQLite3",
        dsn=None,
        attributes={"database": "/nonexistent/erp.db"},
        username=None,
        password=None,
        connect_timeout=1.0,
        read_timeout=1.0,
    )
    return TargetDatabase(name, spec, 1, Backoff(1.0, 2.0))


def state(target: str, check: str, family: MetricFamily) -> CheckState:
    meta = CheckMeta(kind="x", interval=15.0, timeout=5.0, series_limit=100, labels={})
    return CheckState(CheckKey(target, check), meta, families=(family,), success=True)


def page(states: list[CheckState]) -> str:
    view = StatusView(
        states=states,
        databases={"erp": database("erp")},
        reload_ok=True,
        reload_error="",
        config_file="erp-exporter.yml",
        now_monotonic=0.0,
    )
    return render_status_page(view, lambda text: text)


def target_row(html: str) -> str:
    return html.split("<h2>Targets</h2>", 1)[1].split("</table>", 1)[0]


def test_target_state_comes_from_the_metric_that_declares_target_up_whatever_the_check_is_named() -> None:
    up = MetricFamily(UP, [Sample({}, 1.0)])
    assert "<td class='ok'>up</td>" in target_row(page([state("erp", "probe-primary", up)]))


def test_target_is_down_when_its_up_metric_is_0_and_unknown_before_any_result() -> None:
    down = MetricFamily(UP, [Sample({}, 0.0)])
    assert "<td class='bad'>down</td>" in target_row(page([state("erp", "db_response", down)]))
    assert "<td class=''>unknown</td>" in target_row(page([]))


def test_a_login_that_could_write_is_flagged_from_the_metric_role() -> None:
    can_write = MetricFamily(CAN_WRITE, [Sample({}, 1.0)])
    assert "the monitoring login could WRITE" in target_row(page([state("erp", "grants", can_write)]))


def test_metrics_of_another_target_do_not_count() -> None:
    up = MetricFamily(UP, [Sample({}, 1.0)])
    assert "unknown" in target_row(page([state("other", "db_response", up)]))


def test_an_undecodable_byte_in_an_error_message_does_not_break_the_page() -> None:
    """Found by tests/test_fuzz_exposition.py: the page could not be encoded, so `/` answered 500."""
    failed = CheckState(CheckKey("erp", "db_response"), CheckMeta("x", 15.0, 5.0, 100, {}), success=False,
                        error_reason=ErrorReason.QUERY, error_message="caf\udce9 <b>")
    html = page([failed])
    assert "query: caf\ufffd &lt;b&gt;" in html
    html.encode("utf-8")
