"""The reports on 92 days of history: generated with known answers (tests/report_history.py), backfilled into a
real Prometheus by `promtool tsdb create-blocks-from openmetrics`, asked by `erp-exporter report` as a
subprocess. Each number is compared twice: with the value the history was made with, and with a direct PromQL
query on the same Prometheus. The HTML reports are opened in headless Chromium (Debian's `chromium`), which
must log no console message at all (the reports carry no script, and every fetch is refused by a dead proxy),
and a screenshot of each is kept in var/test-artifacts/ (or $ERP_TEST_ARTIFACTS).
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import report_history as history
import requests
from alerting_rules import binary
from alerting_stack import Prometheus, start_prometheus
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).parent / "erp-exporter")
END = "2026-11-01T00:00:00Z"
ARTIFACTS = Path(os.environ.get("ERP_TEST_ARTIFACTS", REPO / "var" / "test-artifacts"))
KINDS = ("capacity", "health", "governance", "month-end")


@dataclass
class Backfilled:
    prometheus: Prometheus
    samples: int
    work: Path


def backfill(work: Path) -> int:
    """The history as TSDB blocks in work/prom-data, the real way; the number of samples written."""
    files, samples = history.write_days(work)
    data = work / "prom-data"
    # GOGC=off: promtool's garbage collector was half its time for these small inputs; two files at once
    # for the two cores CI has
    env = {**os.environ, "GOGC": "off"}

    def create(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                               str(path), str(data)], capture_output=True, text=True, timeout=300, env=env,
                              check=False)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in pool.map(create, files):
            assert done.returncode == 0, done.stderr
    return samples


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    work = tmp_path_factory.mktemp("report-history")
    samples = backfill(work)
    config = work / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    # 2h: keep the backfilled blocks as they are instead of compacting 1,105 of them during the tests
    prometheus = start_prometheus(config, work, ["--storage.tsdb.retention.time=3650d",
                                                 "--storage.tsdb.max-block-duration=2h"])
    try:
        yield Backfilled(prometheus, samples, work)
    finally:
        prometheus.process.stop()


def report(backfilled: Backfilled, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [COMMAND, "report", *args, f"--prometheus.url={backfilled.prometheus.url}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


_json_cache: dict[tuple[str, ...], dict[str, Any]] = {}


def report_json(backfilled: Backfilled, *args: str) -> dict[str, Any]:
    """The JSON report at the end of the history (each distinct command runs once per module)."""
    if args not in _json_cache:
        done = report(backfilled, *args, f"--end={END}", "--format=json")
        assert done.returncode == 0, done.stderr
        _json_cache[args] = json.loads(done.stdout)
    return _json_cache[args]


def promql(backfilled: Backfilled, expr: str, at: float = history.END) -> float | None:
    """A direct instant query: the single value, or None when the result is empty."""
    answer = requests.get(f"{backfilled.prometheus.url}/api/v1/query", params={"query": expr, "time": at},
                          timeout=30).json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def row(document: dict[str, Any], key: str, subject: str, **labels: str) -> dict[str, Any]:
    found = [r for r in document["rows"] if r["row"] == key and r["subject"] == subject
             and all(r.get("labels", {}).get(name) == value for name, value in labels.items())
             and (labels or not r.get("labels"))]
    assert len(found) == 1, (key, subject, labels, found)
    return found[0]


def month_row(document: dict[str, Any], key: str, subject: str, detail: str = "") -> dict[str, Any]:
    (found,) = [r for r in document["rows"] if r["row"] == key and r["subject"] == subject and r["detail"] == detail]
    return found


def close_bounds(month: str) -> tuple[float, float]:
    (close,) = [close for close in history.CLOSES if close.month == month]
    return close.start, close.end


# -- the backfill itself ---------------------------------------------------------------------------------------


def test_prometheus_holds_every_generated_sample(backfilled: Backfilled) -> None:
    names = requests.get(f"{backfilled.prometheus.url}/api/v1/label/__name__/values", timeout=30).json()["data"]
    held = sum(promql(backfilled, f'sum(count_over_time({{__name__="{name}"}}[93d]))') or 0 for name in names)
    assert held == backfilled.samples


# -- capacity --------------------------------------------------------------------------------------------------


def test_capacity_peaks_split_by_the_calendar_equal_the_history_and_promql(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "capacity", "--range=30d")
    october = history.CLOSES[-1]
    assert row(document, "users_peak", "erp-prod")["value"] == october.users
    assert row(document, "users_peak", "erp-prod")["value"] == promql(
        backfilled, "max(max_over_time(erp_users_logged_in[30d]))")
    assert row(document, "users_peak_closing", "erp-prod")["value"] == october.users
    assert row(document, "users_peak_outside", "erp-prod")["value"] == history.USERS_OUTSIDE_PEAK


def test_capacity_database_growth_is_the_generated_50_mib_a_day(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "capacity", "--range=30d")
    growth = row(document, "database_growth", "erp-prod")
    assert growth["value"] == pytest.approx(history.DB_GROWTH_PER_DAY, rel=1e-6)
    assert growth["value"] == pytest.approx(promql(backfilled, "deriv(erp_database_size_bytes[30d]) * 86400"))


def test_capacity_filesystem_forecast_reaches_the_known_limit_in_8_days(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "capacity", "--range=30d")
    days = row(document, "filesystem_days_left", "erp-host:9861", mountpoint=history.DB_MOUNT)
    free_at_end = history.FS_FREE_START - history.FS_SHRINK_PER_DAY * (history.END - history.START) / history.DAY
    assert days["value"] == pytest.approx(free_at_end / history.FS_SHRINK_PER_DAY, rel=1e-6)
    assert days["value"] == pytest.approx(8.0, rel=1e-6)


def test_capacity_database_disk_forecast_is_free_space_over_growth(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "capacity", "--range=30d")
    free_at_end = history.FS_FREE_START - history.FS_SHRINK_PER_DAY * (history.END - history.START) / history.DAY
    days = row(document, "database_disk_days_left", "erp-prod")["value"]
    assert days == pytest.approx(free_at_end / history.DB_GROWTH_PER_DAY, rel=1e-6)  # 163.84 days


def test_a_forecast_says_its_method_and_the_history_it_stood_on(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "capacity", "--range=30d")
    forecast = row(document, "filesystem_days_left", "erp-host:9861", mountpoint=history.DB_MOUNT)["forecast"]
    assert forecast["enough_history"] is True
    assert forecast["samples"] == 30 * 86400 // history.STEP + 1  # both ends of the range hold a sample
    assert 0.99 * 30 * 86400 <= forecast["history_seconds"] <= 30 * 86400
    assert forecast["method"].startswith("linear trend (least squares")


def test_a_filesystem_seen_for_10_minutes_gets_no_forecast_but_not_enough_history(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "capacity", "--range=30d")
    days = row(document, "filesystem_days_left", "erp-host:9861", mountpoint=history.NEW_MOUNT)
    assert days["value"] is None
    assert days["display"] == "not enough history"
    assert days["forecast"]["enough_history"] is False
    assert days["forecast"]["method"].startswith("not enough history: ")


# -- month-end -------------------------------------------------------------------------------------------------


def test_month_end_finds_the_closes_in_the_calendar_series_to_the_second(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "month-end")
    found = {close["month"]: (close["start"], close["end"]) for close in document["closes"] if close["found"]}
    expected = {close.month: (datetime.fromtimestamp(close.start, UTC).isoformat(),
                              datetime.fromtimestamp(close.end, UTC).isoformat()) for close in history.CLOSES}
    assert found == expected


def test_month_end_says_a_month_without_a_close_has_none(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "month-end")
    assert [close["month"] for close in document["closes"]] == ["2026-10", "2026-09", "2026-08", "2026-07"]
    assert document["closes"][-1]["found"] is False
    assert month_row(document, "users_peak", "erp-prod")["values"]["2026-07"] is None


def test_month_end_peaks_per_close_equal_the_history(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "month-end")
    for close in history.CLOSES:
        assert month_row(document, "users_peak", "erp-prod")["values"][close.month] == close.users
        assert month_row(document, "sessions_peak", "erp-prod")["values"][close.month] == close.users + 10
        assert month_row(document, "connections_peak", "erp-prod")["values"][close.month] == close.connections
        assert month_row(document, "database_response_peak", "erp-prod")["values"][close.month] == close.round_trip
        assert month_row(document, "latency_p95_peak", "erp-prod", "transaction=sales_order")["values"][
            close.month] == close.p95
        assert month_row(document, "cpu_peak", "erp-host:9861")["values"][close.month] == close.cpu
        assert month_row(document, "memory_available_low", "erp-host:9861")["values"][
            close.month] == close.memory_low


def test_month_end_numbers_equal_promql_over_each_close(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "month-end")
    for close in history.CLOSES:
        start, end = close_bounds(close.month)
        window = f"{int(end - start)}s"
        failures = month_row(document, "transaction_failures", "erp-prod", "transaction=sales_order")["values"]
        assert failures[close.month] == pytest.approx(promql(
            backfilled, f"sum(increase(erp_transaction_failures_total[{window}]))", end))
        assert failures[close.month] == pytest.approx(close.failures, rel=0.01)
        average = month_row(document, "database_response_avg", "erp-prod")["values"][close.month]
        assert average == pytest.approx(promql(
            backfilled, f"avg_over_time(erp_database_probe_duration_seconds[{window}])", end))


def test_month_end_counts_the_alerts_that_fired_in_each_close(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "month-end")
    fired = month_row(document, "alerts_fired", "")["values"]
    assert fired == {"2026-10": 2, "2026-09": 1, "2026-08": 1, "2026-07": None}  # Watchdog; ErpHostCpuHigh in Oct


def test_month_end_gives_the_change_against_the_previous_close(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "month-end")
    assert month_row(document, "users_peak", "erp-prod")["change"] == "+20.0%"  # 90 against 75
    assert month_row(document, "memory_available_low", "erp-host:9861")["change"] == "-33.3%"  # 20 % against 30 %


def test_month_end_of_an_earlier_month_compares_with_the_ones_before_it(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "month-end", "--month=2026-09", "--previous=1")
    assert [close["month"] for close in document["closes"]] == ["2026-09", "2026-08"]
    assert month_row(document, "users_peak", "erp-prod")["values"] == {"2026-09": 75, "2026-08": 60}
    assert month_row(document, "users_peak", "erp-prod")["change"] == "+25.0%"


# -- governance ------------------------------------------------------------------------------------------------


def test_governance_counts_the_owners_audits_over_their_thresholds(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "governance", "--range=45d")
    assert row(document, "over_warning", "sales")["value"] == 1
    assert row(document, "over_warning", "finance")["value"] == 0
    assert row(document, "violations", "sales")["value"] == history.SALES_TAX_VIOLATIONS


def test_governance_time_over_the_warning_threshold_is_the_generated_one(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "governance", "--range=45d")
    step = 45 * 86400 / 10_000  # the report's subquery step: its resolution
    sales = row(document, "time_over_warning", "sales", audit="sales_missing_tax")["value"]
    assert sales == pytest.approx(history.END - history.SALES_TAX_FROM, abs=step)  # 31 days, since 1 Oct
    # supplier_no_iban falls from 30 to 0 over the history: over 10 until two thirds of it, from the range start
    iban_over_until = history.START + (history.END - history.START) * (1 - 10 / history.IBAN_START)
    iban = row(document, "time_over_warning", "finance", audit="supplier_no_iban")["value"]
    assert iban == pytest.approx(iban_over_until - (history.END - 45 * 86400), abs=step)
    assert row(document, "time_over_critical", "sales", audit="sales_missing_tax")["value"] == 0


def test_governance_trend_is_the_generated_slope(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "governance", "--range=45d")
    trend = row(document, "trend", "finance", audit="supplier_no_iban")
    per_day = -history.IBAN_START / ((history.END - history.START) / history.DAY)
    assert trend["value"] == pytest.approx(per_day, rel=1e-6)
    assert trend["value"] == pytest.approx(promql(backfilled, 'deriv(erp_audit_violations{audit="supplier_no_iban"}'
                                                              '[45d]) * 86400'))


def test_governance_for_one_owner_lists_only_its_audits(backfilled: Backfilled) -> None:
    document = report_json(backfilled, "governance", "--range=45d", "--owner=finance")
    assert {r["subject"] for r in document["rows"]} == {"finance"}


# -- clear errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "flag", "names"), [
    ("capacity", "--target=nope", "targets with data: erp-prod"),
    ("governance", "--owner=nope", "owners with data: finance, sales"),
    ("governance", "--audit=nope", "audits with data: sales_missing_tax, supplier_no_iban"),
])
def test_an_unknown_filter_exits_2_with_the_names_that_exist(backfilled: Backfilled, kind: str, flag: str,
                                                             names: str) -> None:
    done = report(backfilled, kind, flag, f"--end={END}")
    assert done.returncode == 2
    assert done.stdout == ""
    assert names in done.stderr
    assert "Traceback" not in done.stderr


# -- progress --------------------------------------------------------------------------------------------------


def run_on_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal and stdout on a pipe: (exit code, stdout, what the terminal got)."""
    leader, follower = pty.openpty()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=follower, text=True) as process:
        os.close(follower)
        terminal = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            terminal += chunk
        stdout = process.stdout.read() if process.stdout else ""
        code = process.wait(60)
    os.close(leader)
    return code, stdout, terminal.decode(errors="replace")


def test_a_report_on_a_terminal_shows_its_progress_on_stderr_and_erases_it(backfilled: Backfilled) -> None:
    argv = [COMMAND, "report", "capacity", f"--prometheus.url={backfilled.prometheus.url}", f"--end={END}"]
    code, stdout, terminal = run_on_a_terminal(argv)
    assert code == 0
    assert "erp-exporter report capacity: 1/" in terminal
    assert terminal.endswith("\r\x1b[K")
    assert "queries" not in stdout


def test_a_report_piped_shows_no_progress(backfilled: Backfilled) -> None:
    done = report(backfilled, "capacity", f"--end={END}")
    assert done.returncode == 0
    assert done.stderr == ""


# -- HTML in a browser and Markdown with its images ------------------------------------------------------------


def chromium(page: Path, screenshot: Path, work: Path) -> str:
    """Open `page` in headless Chromium, save a screenshot, return what Chromium logged from the page's console.

    The dead proxy makes any fetch fail with a console message: a report that needs the network shows it.
    """
    home = work / "chromium"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_CACHE_HOME": str(home / "cache")}
    done = subprocess.run(
        [shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={home / 'profile'}", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         "--window-size=1280,2400", "--virtual-time-budget=3000", "--enable-logging=stderr", "--v=0",
         f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return "\n".join(line for line in done.stderr.splitlines() if ":CONSOLE" in line)


def test_chromium_console_messages_are_seen(tmp_path: Path) -> None:
    """The check below could fail: a page that logs an error and fetches from the network is caught."""
    page = tmp_path / "noisy.html"
    page.write_text('<html><body><img src="http://example.invalid/x.png">'
                    '<script>console.error("report-broken")</script></body></html>')
    console = chromium(page, tmp_path / "noisy.png", tmp_path)
    assert "report-broken" in console


_html_cache: dict[str, Path] = {}


def html_report(backfilled: Backfilled, kind: str) -> Path:
    """The HTML report of `kind` over the last 30 days (month-end: its default closes), written once per module
    into a directory of its own, so that a test can see every file the report wrote."""
    if kind not in _html_cache:
        directory = backfilled.work / f"html-{kind}"
        directory.mkdir()
        page = directory / f"{kind}.html"
        done = report(backfilled, kind, f"--end={END}", "--format=html", f"--output={page}",
                      *(["--range=30d"] if kind != "month-end" else []))
        assert done.returncode == 0, done.stderr
        _html_cache[kind] = page
    return _html_cache[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_html_report_opens_in_chromium_with_no_console_message(backfilled: Backfilled, kind: str,
                                                               tmp_path: Path) -> None:
    page = html_report(backfilled, kind)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / f"report-{kind}.png"
    console = chromium(page, screenshot, tmp_path)
    assert console == ""
    with Image.open(screenshot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # charts and tables drawn, not a blank page
    shutil.copy(page, ARTIFACTS / f"report-{kind}.html")


@pytest.mark.parametrize("kind", KINDS)
def test_html_report_is_one_file_with_its_charts_inside(backfilled: Backfilled, kind: str) -> None:
    page = html_report(backfilled, kind)
    text = page.read_text()
    assert text.count("<svg") >= 3
    assert "src=\"http" not in text and "href=\"http" not in text and "<script" not in text
    assert os.listdir(page.parent) == [page.name]


def test_markdown_report_writes_its_charts_as_png_files_beside_it(backfilled: Backfilled, tmp_path: Path) -> None:
    page = tmp_path / "capacity.md"
    done = report(backfilled, "capacity", f"--end={END}", "--range=30d", "--format=markdown", f"--output={page}")
    assert done.returncode == 0, done.stderr
    images = sorted(path.name for path in tmp_path.glob("capacity-*.png"))
    assert len(images) >= 3
    text = page.read_text()
    for name in images:
        assert f"]({name})" in text
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG"
            assert image.width >= 400
