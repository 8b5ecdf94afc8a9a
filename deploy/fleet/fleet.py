"""The fleet's processes: exporters, agent pairs, the central Prometheus and the Alertmanager cluster.

`Fleet` starts every part on loopback, and stops, kills and restarts single parts by their own handle (the
fault tests in tests/test_fleet.py and the benchmark use that); deploy/fleet/run_fleet.py (`make fleet`) is
the command around it. Every child runs in its own process group and is stopped by its pid, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_configs import (
    REPLICAS,
    RULES_DIR,
    Agent,
    Intervals,
    Landscape,
    address,
    agent_config,
    central_config,
    exporter_config,
    seed_database,
)


class FleetError(RuntimeError):
    """A part did not start; the message has the end of its log."""


def free_port() -> int:
    """A loopback TCP port that is free right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def find_binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise FleetError(f"{' or '.join(names)} not found: install Debian's prometheus and prometheus-alertmanager "
                     "packages (make system-packages)")  # fmt: skip


def exporter_binary() -> str:
    beside = Path(sys.executable).parent / "erp-exporter"
    return str(beside) if beside.exists() else find_binary("erp-exporter")


@dataclass
class Part:
    """One child process: its command line, log file and readiness URL; restartable."""

    name: str
    argv: list[str]
    log: Path
    ready_url: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running and self.process else None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise FleetError(f"{self.name} exited with {code}; the end of {self.log}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise FleetError(f"{self.name} did not answer {self.ready_url} within {timeout:.0f}s; the end of "
                                 f"{self.log}:\n{self.log_tail()}")  # fmt: skip
            time.sleep(0.1)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; also whatever the child left in its process group."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with contextlib.suppress(ProcessLookupError):  # start_new_session: the group id is the child's pid
            os.killpg(process.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown work (no flushed queue, no goodbye to cluster peers)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@dataclass
class FleetSpec:
    """What to run: how many sites and landscapes, how often, where."""

    var: Path
    sites: int = 2
    landscapes_per_site: int = 1
    intervals: Intervals = field(default_factory=Intervals)
    host_metrics: bool = True
    # extra flags: the tests re-send alerts every second and shorten the cluster's peer wait
    central_flags: Sequence[str] = ()
    alertmanager_flags: Sequence[str] = ()
    agent_flags: Sequence[str] = ()
    ports: Callable[[], int] = free_port
    rules_dir: Path = RULES_DIR  # the generated rules (the tests generate them with shorter `for`)


def site_names(count: int) -> list[str]:
    return [f"site-{index + 1}" for index in range(count)]


class Fleet:
    """Every part of the fleet, by name: exporter-<landscape>, agent-<site>-<a|b>, central, alertmanager-<1|2>."""

    def __init__(self, spec: FleetSpec, alertmanager_config: str) -> None:
        self.spec = spec
        var = spec.var
        self.landscapes = [
            Landscape(f"{site}-l{index + 1}", site, spec.ports(), var / "landscapes" / f"{site}-l{index + 1}.db")
            for site in site_names(spec.sites) for index in range(spec.landscapes_per_site)
        ]
        self.agents = [Agent(site, replica, spec.ports()) for site in site_names(spec.sites) for replica in REPLICAS]
        self.central_port = spec.ports()
        self.alertmanager_ports = [spec.ports(), spec.ports()]
        self.cluster_ports = [spec.ports(), spec.ports()]
        self.alertmanager_config = alertmanager_config
        self.parts: dict[str, Part] = {}
        self._define_parts()

    # -- urls --------------------------------------------------------------------------------------------------

    @property
    def central_url(self) -> str:
        return f"http://{address(self.central_port)}"

    def alertmanager_url(self, index: int) -> str:
        return f"http://{address(self.alertmanager_ports[index])}"

    def agent(self, site: str, replica: str) -> Agent:
        return next(agent for agent in self.agents if agent.site == site and agent.replica == replica)

    def part(self, name: str) -> Part:
        return self.parts[name]

    # -- the parts ---------------------------------------------------------------------------------------------

    def _define_parts(self) -> None:
        var = self.spec.var
        prometheus = find_binary("prometheus")
        alertmanager = find_binary("prometheus-alertmanager", "alertmanager")
        for landscape in self.landscapes:
            config = var / "landscapes" / f"{landscape.name}.yml"
            self.parts[f"exporter-{landscape.name}"] = Part(
                f"exporter-{landscape.name}",
                [exporter_binary(), f"--config.file={config}", f"--web.listen-address={address(landscape.port)}"],
                var / "logs" / f"exporter-{landscape.name}.log", f"http://{address(landscape.port)}/-/healthy")
        for index, port in enumerate(self.alertmanager_ports):
            name = f"alertmanager-{index + 1}"
            peer = self.cluster_ports[1 - index]
            self.parts[name] = Part(name, [
                alertmanager, f"--config.file={var / 'alertmanager.yml'}", f"--storage.path={var / name}",
                f"--web.listen-address={address(port)}", f"--web.external-url=http://{address(port)}/",
                f"--cluster.listen-address={address(self.cluster_ports[index])}",
                f"--cluster.advertise-address={address(self.cluster_ports[index])}",
                f"--cluster.peer={address(peer)}", *self.spec.alertmanager_flags,
            ], var / "logs" / f"{name}.log", f"http://{address(port)}/-/ready")  # fmt: skip
        self.parts["central"] = Part("central", [
            prometheus, f"--config.file={var / 'central.yml'}", f"--storage.tsdb.path={var / 'central'}",
            "--storage.tsdb.retention.time=45d",  # the month-end rules look 4 to 5 weeks back
            "--web.enable-remote-write-receiver", "--web.enable-lifecycle",
            f"--web.listen-address={address(self.central_port)}",
            f"--web.external-url={self.central_url}/", *self.spec.central_flags,
        ], var / "logs" / "central.log", f"{self.central_url}/-/ready")  # fmt: skip
        for agent in self.agents:
            self.parts[agent.name] = Part(agent.name, [
                prometheus, "--enable-feature=agent", f"--config.file={var / (agent.name + '.yml')}",
                f"--storage.agent.path={var / agent.name}", f"--web.listen-address={address(agent.port)}",
                "--web.enable-lifecycle", *self.spec.agent_flags,
            ], var / "logs" / f"{agent.name}.log", f"http://{address(agent.port)}/-/ready")  # fmt: skip

    def write_configs(self) -> None:
        var = self.spec.var
        intervals = self.spec.intervals
        (var / "landscapes").mkdir(parents=True, exist_ok=True)
        for landscape in self.landscapes:
            seed_database(landscape.database, landscape.name)
            (var / "landscapes" / f"{landscape.name}.yml").write_text(
                exporter_config(landscape, intervals, host=self.spec.host_metrics))
        for agent in self.agents:
            (var / f"{agent.name}.yml").write_text(agent_config(agent, self.landscapes, self.central_port, intervals))
        (var / "central.yml").write_text(central_config(self.alertmanager_ports, intervals, self.spec.rules_dir,
                                                         self_port=self.central_port))  # fmt: skip
        (var / "alertmanager.yml").write_text(self.alertmanager_config)

    def start(self, timeout: float = 60) -> None:
        """Write the configs and start everything: exporters, Alertmanagers, central, then the agents."""
        self.write_configs()
        try:
            for part in self.parts.values():
                part.start()
            for part in self.parts.values():
                part.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything, agents first (they flush their queue while the central is still up)."""
        for part in reversed(list(self.parts.values())):
            part.stop()

    def restart(self, name: str, timeout: float = 60) -> None:
        part = self.parts[name]
        part.start()
        part.wait_ready(timeout)

    def dead(self) -> list[Part]:
        """Parts that were started and have exited on their own."""
        return [part for part in self.parts.values() if part.process is not None and part.process.poll() is not None]
