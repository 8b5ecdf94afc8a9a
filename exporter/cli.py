"""Command line in the style of the Prometheus Go exporters.

erp-exporter [--config.file=erp-exporter.yml] [--web.listen-address=:9861] [--web.config.file=web.yml]
             [--log.level=info] [--log.format=logfmt|json]
erp-exporter check-config   validate the config (exit 0, or 2 with file:line: key: message lines)
erp-exporter once           run every check once, print a table (exit 1 if any check failed)
erp-exporter audit NAME     run one audit once and print its count, owner and sample keys [--target T]
erp-exporter schema         print the JSON Schema of the config file
erp-exporter report {capacity,health} --prometheus.url=URL [--range=30d]   reports from Prometheus' HTTP API
erp-exporter --version
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from exporter import __version__
from exporter.app import App, build_runtime, run_checks_once
from exporter.catalog import catalog_markdown
from exporter.checks.audits import audit_reports
from exporter.checks.builtin import default_registry
from exporter.commands.audit import audit_table, run_audit
from exporter.config.loader import ConfigError, load_config
from exporter.config.schema import config_json_schema
from exporter.exposition import families_for, to_client_metrics
from exporter.http.server import ExporterHTTPServer, parse_listen_address
from exporter.http.web_config import WebConfig, load_web_config
from exporter.logs import SecretMask, configure_logging
from exporter.report import command as report_command
from exporter.source.yaml_source import SourceError
from exporter.store import ResultStore

log = logging.getLogger("exporter")

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_CONFIG = 2


def _common_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    def default(value: str) -> str | None:
        return argparse.SUPPRESS if suppress else value  # subcommands must not reset the main flags

    parser.add_argument(
        "--config.file",
        dest="config_file",
        default=default("erp-exporter.yml"),
        help="configuration file (default: erp-exporter.yml)",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default=default("info"),
        choices=["debug", "info", "warn", "error"],
        help="log level (default: info)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default=default("logfmt"),
        choices=["logfmt", "json"],
        help="log format (default: logfmt)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=default(""),
        help="TLS and basic auth settings in the exporter-toolkit format",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="erp-exporter", description="Prometheus exporter that keeps an ERP system healthy."
    )
    _common_flags(parser, suppress=False)
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=":9861",
        help="address to listen on (default: :9861)",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"erp-exporter {__version__} (python {platform.python_version()})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in (
        ("check-config", "validate the configuration and exit"),
        ("once", "run every check once, print the results and exit"),
        ("schema", "print the JSON Schema of the configuration file"),
        ("metrics", "print the list of every metric the exporter can expose (Markdown)"),
    ):
        sub = commands.add_parser(name, help=help_text)
        _common_flags(sub, suppress=True)
        if name == "once":
            sub.add_argument("--show-metrics", action="store_true", help="also print the metrics produced")
    audit = commands.add_parser("audit", help="run one data-governance audit once and print what it found")
    _common_flags(audit, suppress=True)
    audit.add_argument("name", help="the audit's name")
    audit.add_argument("--target", default=None, help="the target to run it on (when several targets run it)")
    report_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mask = SecretMask()
    configure_logging("warning" if args.log_level == "warn" else args.log_level, args.log_format, mask)
    if args.command == "schema":
        print(json.dumps(config_json_schema(), indent=2))
        return EXIT_OK
    if args.command == "metrics":
        print(catalog_markdown(default_registry()), end="")
        return EXIT_OK
    if args.command == "check-config":
        return check_config(Path(args.config_file), args.web_config_file)
    if args.command == "once":
        return run_once(Path(args.config_file), mask, args.show_metrics)
    if args.command == "audit":
        return audit_once(Path(args.config_file), args.name, args.target, mask)
    if args.command == "report":
        return report_command.run(args)
    return serve(args, mask)


def check_config(path: Path, web_config_file: str) -> int:
    """Validate the config (and web config); print what was found."""
    try:
        loaded = load_config(path)
        if web_config_file:
            load_web_config(Path(web_config_file))
    except SourceError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    config = loaded.config
    checks = sum(len(t.checks) for t in config.targets)
    counts = [
        _plural(len(config.targets), "target"),
        _plural(checks, "configured target check"),
        _plural(len(config.process_groups), "process group"),
    ]
    counts += [
        _plural(count, word)
        for count, word in (
            (len(config.http_transactions), "HTTP transaction"),
            (len(config.backups), "backup set"),
            (len(config.logs), "log file"),
            (len(config.calendars), "calendar"),
        )
        if count
    ]
    print(f"{path}: OK ({', '.join(counts)})")
    return EXIT_OK


def audit_once(path: Path, name: str, target: str | None, mask: SecretMask) -> int:
    """Run one audit against its target: exit 0, 1 if its query failed, 2 for config errors."""
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    mask.update(loaded.secrets())
    return run_audit(loaded, name, target, sys.stdout, sys.stderr, mask.apply)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def run_once(path: Path, mask: SecretMask, show_metrics: bool) -> int:
    """Run every configured check once and print a table of the outcomes."""
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    mask.update(loaded.secrets())
    store = ResultStore()
    runtime = build_runtime(loaded, default_registry(), store)
    run_checks_once(runtime, store)
    _, states = store.snapshot()
    rows = [("TARGET", "CHECK", "KIND", "RESULT", "DURATION", "SERIES", "ERROR")]
    failed = False
    for state in sorted(states, key=lambda s: (s.key.target, s.key.check)):
        result = "ok" if state.success else "FAILED" if state.success is False else "no result"
        failed = failed or not state.success
        error = f"{state.error_reason.value}: {state.error_message}" if state.error_reason else ""
        rows.append(
            (
                state.key.target or "-",
                state.key.check,
                state.meta.kind,
                result,
                f"{state.duration:.3f}s",
                str(state.series),
                mask.apply(error),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    audit_lines = audit_table(audit_reports(states, runtime.loaded))
    if audit_lines:
        print()
        for line in audit_lines:
            print(mask.apply(line))
    if show_metrics:
        print()
        for metric in to_client_metrics(families_for(states, time.monotonic())):
            for sample in metric.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                print(
                    f"{sample.name}{{{labels}}} {sample.value:g}"
                    if labels
                    else f"{sample.name} {sample.value:g}"
                )
    return EXIT_CHECK_FAILED if failed else EXIT_OK


def serve(args: argparse.Namespace, mask: SecretMask) -> int:
    """Run the exporter until SIGTERM/SIGINT; SIGHUP reloads the config."""
    try:
        host, port = parse_listen_address(args.listen_address)
        web = load_web_config(Path(args.web_config_file)) if args.web_config_file else WebConfig()
    except (ValueError, SourceError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    app = App(Path(args.config_file), default_registry(), mask)
    try:
        app.start()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    web_base = Path(args.web_config_file).parent if args.web_config_file else Path(".")
    try:
        server = ExporterHTTPServer((host, port), app, web, web_base)
    except OSError as exc:
        app.stop()
        print(f"cannot listen on {args.listen_address}: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    stop = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=app.reload, name="erp-reload", daemon=True).start()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_hup)
    server.serve_in_thread()
    scheme = "https" if web.tls_server_config else "http"
    shown = f"{host or 'localhost'}:{server.server_address[1]}"
    log.info(
        "listening",
        extra={
            "address": args.listen_address,
            "metrics": f"{scheme}://{shown}/metrics",
            "status": f"{scheme}://{shown}/",
            "version": __version__,
        },
    )
    # The kernel may deliver a signal to any thread, and Python runs its handler only when the main
    # thread next executes bytecode: an untimed wait could leave a SIGHUP or SIGTERM pending for ever.
    while not stop.wait(0.25):
        pass
    log.info("shutting down")
    server.shutdown()
    server.server_close()
    app.stop()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
