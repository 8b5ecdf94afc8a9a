"""`make fleet`: several ERP landscapes watched by Prometheus' own distributed parts, on loopback, no Docker.

What runs (deploy/fleet/fleet.py; the configs are written by deploy/fleet/fleet_configs.py to --var-dir):

1. per landscape an exporter on its own small SQLite demo database (no Tryton: the fleet must be cheap);
2. per site two Debian `prometheus --enable-feature=agent` (replica a and b, external labels site and
   replica) scraping that site's exporters and writing everything to the central Prometheus;
3. a central `prometheus --web.enable-remote-write-receiver` that evaluates the generated rules of
   alert_rules/ and alerts to
4. two `prometheus-alertmanager` clustered over loopback (--cluster.listen-address, --cluster.peer) with
   the shipped alertmanager.yml whose webhooks post to a local sink (<var-dir>/notifications.jsonl).

Ports are picked free by the kernel and printed. Ctrl-C or SIGTERM stops everything by pid.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "deploy" / "stack"))

from fleet import Fleet, FleetError, FleetSpec  # noqa: E402
from fleet_configs import Intervals  # noqa: E402
from run_stack import NotificationSink, alertmanager_config  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=3, help="sites, each with an agent pair (default: 3)")
    parser.add_argument("--landscapes-per-site", type=int, default=1, help="exporters per site (default: 1)")
    parser.add_argument("--scrape-interval", default="15s",
                        help="scrape, rule evaluation and check interval (default: 15s)")
    parser.add_argument("--no-host-metrics", action="store_true",
                        help="leave out the exporters' host metrics (they all describe this one machine)")
    parser.add_argument("--var-dir", type=Path, default=REPO / "var" / "fleet",
                        help="data, configs and logs of every part (default: var/fleet)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    var: Path = args.var_dir.resolve()
    var.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sink = NotificationSink(var / "notifications.jsonl", lambda text: print(text.replace("stack:", "fleet:"),
                                                                            flush=True))  # fmt: skip
    sink.start()
    interval = args.scrape_interval
    spec = FleetSpec(var=var, sites=args.sites, landscapes_per_site=args.landscapes_per_site,
                     intervals=Intervals(scrape=interval, evaluation=interval, check=interval),
                     host_metrics=not args.no_host_metrics)  # fmt: skip
    exit_code = 0
    fleet: Fleet | None = None
    try:
        fleet = Fleet(spec, alertmanager_config(sink.url))
        fleet.start()
        print("\nfleet: everything is up on loopback (Ctrl-C stops it all)")
        for landscape in fleet.landscapes:
            print(f"  exporter {landscape.name:<14} http://127.0.0.1:{landscape.port}/metrics   site {landscape.site}")
        for agent in fleet.agents:
            print(f"  agent {agent.site} replica {agent.replica}     http://127.0.0.1:{agent.port}/")
        print(f"  central Prometheus        {fleet.central_url}/classic/alerts")
        for index in range(2):
            print(f"  Alertmanager {index + 1}            {fleet.alertmanager_url(index)}/   "
                  f"cluster 127.0.0.1:{fleet.cluster_ports[index]}")
        print(f"  notifications             {sink.url}/ -> {var / 'notifications.jsonl'}")
        print(f"  configs, data and logs    {var}/\n", flush=True)
        while not stopping.wait(0.5):
            dead = fleet.dead()
            if dead:
                raise FleetError(f"{dead[0].name} exited; the end of {dead[0].log}:\n{dead[0].log_tail()}")
    except FleetError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        exit_code = 1
    finally:
        print("fleet: stopping", flush=True)
        if fleet is not None:
            fleet.stop()
        sink.stop()
        print("fleet: stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
