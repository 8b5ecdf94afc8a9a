"""`erp-exporter report {capacity,health}`: reports for capacity planners from Prometheus' HTTP API.

Exit codes: 0 report printed (rows without data say "no data"), 1 Prometheus could not be asked or refused a
query (one line on stderr), 2 bad flags (argparse's usage message).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.report.client import Auth, PrometheusClient, PrometheusError
from exporter.report.definitions import REPORTS, Thresholds
from exporter.report.engine import Options, run_report
from exporter.report.render import FORMATS, render
from exporter.source.durations import parse_duration

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
    parser.add_argument("kind", choices=sorted(REPORTS), help="which report")
    parser.add_argument("--prometheus.url", dest="prometheus_url", required=True, metavar="URL",
                        help="Prometheus' base URL, e.g. http://prometheus:9090 (a path prefix is kept)")
    parser.add_argument("--range", dest="range", type=parse_range, default="30d", metavar="DURATION",
                        help="how far back the report looks, a Prometheus duration (default: 30d)")
    parser.add_argument("--end", dest="end", type=parse_end, default=None, metavar="TIME",
                        help="when the range ends: Unix seconds or ISO 8601 (default: now)")
    parser.add_argument("--environment", default=None, metavar="NAME", help="only targets with this environment label")
    parser.add_argument("--target", default=None, metavar="NAME", help="only this target")
    parser.add_argument("--format", dest="format", choices=FORMATS, default="text", help="output (default: text)")
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


def run(args: argparse.Namespace) -> int:
    """The ``report`` subcommand: print the report on stdout; exit 1 with one line on stderr on failure."""
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
        range_text=args.range,
        range_seconds=parse_duration(args.range),
        end=args.end if args.end is not None else time.time(),
        environment=args.environment,
        target=args.target,
        thresholds=thresholds,
    )
    try:
        client = PrometheusClient(args.prometheus_url, timeout=args.prometheus_timeout, auth=auth,
                                  ca_file=args.prometheus_ca_file or None)
    except PrometheusError as exc:
        print(f"erp-exporter report: {exc}", file=sys.stderr)
        return EXIT_PROMETHEUS
    try:
        result = run_report(REPORTS[args.kind], client, options)
    except PrometheusError as exc:
        print(f"erp-exporter report: {exc}", file=sys.stderr)
        return EXIT_PROMETHEUS
    finally:
        client.close()
    sys.stdout.write(render(result, args.format))
    return EXIT_OK
