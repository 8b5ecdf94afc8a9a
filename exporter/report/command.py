"""`erp-exporter report {capacity,health,governance,month-end}`: reports from Prometheus' HTTP API.

Exit codes: 0 report printed (rows without data say "no data"), 1 Prometheus could not be asked or refused a
query, or the output file could not be written (one line on stderr), 2 bad flags (argparse's usage message),
or a --site, --target, --environment, --owner or --audit that no series over the range has (the names that exist).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.report.client import Auth, PrometheusClient, PrometheusError, url_problem
from exporter.report.definitions import REPORTS, Thresholds
from exporter.report.engine import Options, Progress, run_report
from exporter.report.month_end import month_start, parse_month, run_month_end, shift
from exporter.report.output import write_month_end, write_report
from exporter.report.render import FORMATS
from exporter.source.durations import parse_duration

KINDS = (*sorted(REPORTS), "month-end")
DEFAULT_RANGE = "30d"

EXIT_OK = 0
EXIT_PROMETHEUS = 1
EXIT_USAGE = 2

# the names of the environment variables that may hold the secrets (not secrets themselves)
PASSWORD_ENV = "ERP_EXPORTER_PROMETHEUS_PASSWORD"  # noqa: S105
BEARER_TOKEN_ENV = "ERP_EXPORTER_PROMETHEUS_BEARER_TOKEN"  # noqa: S105


def parse_range(text: str) -> str:
    """A Prometheus duration longer than 0 (``30d``, ``1w``, ``12h``), for argparse."""
    try:
        seconds = parse_duration(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"expected a duration of at least 1s, got {text!r}")
    return text.strip()


def parse_end(text: str) -> float:
    """Unix seconds, or an ISO 8601 date or time (UTC unless it names a zone), for argparse."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected Unix seconds or an ISO 8601 time like 2026-01-31T23:59:59Z, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_url(text: str) -> str:
    """An http:// or https:// URL with a host, for argparse."""
    problem = url_problem(text.strip())
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text.strip()


def parse_month_flag(text: str) -> str:
    try:
        parse_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def parse_previous(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of closes, got {text!r}") from None
    if not 0 <= count <= 24:
        raise argparse.ArgumentTypeError(f"expected 0 to 24 previous closes, got {count}")
    return count


def parse_timeout(text: str) -> float:
    try:
        seconds = parse_duration(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration longer than 0s, got {text!r}")
    return seconds


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to the CLI's subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "report",
        help="capacity or health report from Prometheus' HTTP API (for capacity planners)",
        description="Ask Prometheus (instant queries at the end of the range, read-only) and print a capacity or "
        "health report per target. A measure without data says 'no data', never 0.",
    )
    parser.add_argument("kind", choices=KINDS, help="which report")
    parser.add_argument("--prometheus.url", dest="prometheus_url", required=True, metavar="URL", type=parse_url,
                        help="Prometheus' base URL, e.g. http://prometheus:9090 (a path prefix is kept)")
    parser.add_argument("--range", dest="range", type=parse_range, default=None, metavar="DURATION",
                        help="how far back the report looks, a Prometheus duration (default: 30d)")
    parser.add_argument("--end", dest="end", type=parse_end, default=None, metavar="TIME",
                        help="when the range ends: Unix seconds or ISO 8601 (default: now)")
    parser.add_argument("--site", default=None, metavar="NAME",
                        help="only the landscapes of this site of a fleet (its agents' `site` external label)")
    parser.add_argument("--environment", default=None, metavar="NAME", help="only targets with this environment label")
    parser.add_argument("--target", default=None, metavar="NAME", help="only this target")
    parser.add_argument("--format", dest="format", choices=FORMATS, default="text", help="output (default: text)")
    parser.add_argument("--output", dest="output", default="", metavar="FILE",
                        help="write the report to FILE instead of stdout; with markdown the charts go beside it as "
                        "PNG files (FILE's name + the chart's)")
    parser.add_argument("--month", dest="month", type=parse_month_flag, default=None, metavar="YYYY-MM",
                        help="month-end: the month whose close to report (default: the newest close by --end)")
    parser.add_argument("--previous", dest="previous", type=parse_previous, default=None, metavar="N",
                        help="month-end: how many previous closes to compare with (default: 3)")
    parser.add_argument("--owner", default=None, metavar="NAME", help="governance: only the audits of this owner")
    parser.add_argument("--audit", default=None, metavar="NAME", help="governance: only this audit")
    parser.add_argument("--prometheus.timeout", dest="prometheus_timeout", type=parse_timeout, default=30.0,
                        metavar="DURATION", help="timeout of each query (default: 30s)")
    parser.add_argument("--prometheus.username", dest="prometheus_username", default="", metavar="USER",
                        help=f"basic auth user; the password comes from ${PASSWORD_ENV} or --prometheus.password-file")
    parser.add_argument("--prometheus.password-file", dest="prometheus_password_file", default="", metavar="FILE",
                        help="file holding the basic auth password")
    parser.add_argument("--prometheus.bearer-token-file", dest="prometheus_bearer_token_file", default="",
                        metavar="FILE", help=f"file holding a bearer token (or ${BEARER_TOKEN_ENV})")
    parser.add_argument("--prometheus.ca-file", dest="prometheus_ca_file", default="", metavar="FILE",
                        help="CA certificate(s) to verify Prometheus' TLS certificate with")
    parser.add_argument("--thresholds.file", dest="thresholds_file", default="", metavar="FILE",
                        help="alert_rules/thresholds.yml of your site, to mark values warning/critical "
                        "(default: the shipped thresholds)")
    return parser


def _secret(path: str, env: str, flag: str) -> str:
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read {flag} {path}: {exc.strerror}") from None
    return os.environ.get(env, "")


def _usage_error(args: argparse.Namespace) -> str | None:
    """A flag that does not fit the report kind."""
    if args.kind != "month-end" and (args.month is not None or args.previous is not None):
        return "--month and --previous are for the month-end report"
    if args.kind != "governance" and (args.owner is not None or args.audit is not None):
        return "--owner and --audit are for the governance report"
    if args.kind == "month-end" and args.range is not None:
        return "the month-end report takes --month and --previous, not --range"
    return None


#: (flag, label, the series whose labels name what exists)
NAMED_FILTERS = (
    ("--site", "site", "erp_check_success"),
    ("--environment", "environment", "erp_check_success"),
    ("--target", "target", 'erp_check_success{target!=""}'),
    ("--owner", "owner", "erp_audit_violations"),
    ("--audit", "audit", "erp_audit_violations"),
)


def unknown_filter(client: PrometheusClient, options: Options) -> str | None:
    """The message for a filter value that no series over the range has, with the names that exist."""
    for flag, label, series in NAMED_FILTERS:
        wanted = options.filters().get(label)
        if wanted is None:
            continue
        query = f"group by ({label}) (last_over_time({series}[{int(options.range_seconds)}s]))"
        names = sorted({sample.labels.get(label, "") for sample in client.query(query, options.end)} - {""})
        if wanted not in names:
            known = ", ".join(names) if names else "none"
            return f"{flag} {wanted!r}: no series over the range has it; {label}s with data: {known}"
    return None


def terminal_progress(kind: str) -> Progress | None:
    """A progress line on stderr while the report is asked, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\rerp-exporter report {kind}: {done}/{total} queries")
        sys.stderr.flush()

    return show


def clear_progress(progress: Progress | None) -> None:
    """Erase the progress line, so what follows on the terminal (the report, an error) starts clean."""
    if progress is not None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    """The ``report`` subcommand: print (or write) the report; exit 1 with one line on stderr on failure."""
    problem = _usage_error(args)
    if problem:
        print(f"erp-exporter report: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        auth = Auth(
            username=args.prometheus_username,
            password=_secret(args.prometheus_password_file, PASSWORD_ENV, "--prometheus.password-file"),
            bearer_token=_secret(args.prometheus_bearer_token_file, BEARER_TOKEN_ENV,
                                 "--prometheus.bearer-token-file"),
        )
        thresholds = Thresholds.load(Path(args.thresholds_file)) if args.thresholds_file else Thresholds()
    except ValueError as exc:
        print(f"erp-exporter report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.prometheus_username and auth.bearer_token:
        print("erp-exporter report: choose basic auth or a bearer token, not both", file=sys.stderr)
        return EXIT_USAGE
    options = Options(
        range_text=args.range or DEFAULT_RANGE,
        range_seconds=parse_duration(args.range or DEFAULT_RANGE),
        end=args.end if args.end is not None else time.time(),
        site=args.site,
        environment=args.environment,
        target=args.target,
        thresholds=thresholds,
        owner=args.owner,
        audit=args.audit,
    )
    previous = 3 if args.previous is None else args.previous
    if args.kind == "month-end":  # the filters are checked against the months the report covers
        first = month_start(*shift(*parse_month(args.month or time.strftime("%Y-%m", time.gmtime(options.end))),
                                   -previous - 1))
        options = replace(options, range_text=f"{int(options.end - first)}s", range_seconds=options.end - first)
    try:
        client = PrometheusClient(args.prometheus_url, timeout=args.prometheus_timeout, auth=auth,
                                  ca_file=args.prometheus_ca_file or None)
    except PrometheusError as exc:
        print(f"erp-exporter report: {exc}", file=sys.stderr)
        return EXIT_PROMETHEUS
    charts = args.format == "html" or (args.format == "markdown" and bool(args.output))
    progress = terminal_progress(args.kind)
    try:
        unknown = unknown_filter(client, options)
        if unknown:
            print(f"erp-exporter report: {unknown}", file=sys.stderr)
            return EXIT_USAGE
        if args.kind == "month-end":
            month_end = run_month_end(client, options, args.month, previous, charts=charts, progress=progress)
            clear_progress(progress)
            write_month_end(month_end, args.format, args.output, thresholds)
        else:
            result = run_report(REPORTS[args.kind], client, options, charts=charts, progress=progress)
            clear_progress(progress)
            write_report(result, args.format, args.output)
    except PrometheusError as exc:
        clear_progress(progress)
        print(f"erp-exporter report: {exc}", file=sys.stderr)
        return EXIT_PROMETHEUS
    except OSError as exc:
        print(f"erp-exporter report: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return EXIT_PROMETHEUS
    finally:
        client.close()
    return EXIT_OK
