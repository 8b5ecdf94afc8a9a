"""The process group check: pure tests with built samples, and runs against real child processes."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Hashable, Iterator

import psutil
import pytest

from exporter.checks.base import CheckError, ErrorReason, RunContext
from exporter.checks.process_group import (
    CpuAccountant,
    CpuTotals,
    ProcessGroupCheck,
    ProcessGroupSnapshot,
    ProcessSample,
    process_group_to_families,
    process_matches,
)
from exporter.metrics import MetricFamily, MetricType

SLEEP = "import time; time.sleep(60)"
# Burns 0.3 s of CPU time (not wall time, so a busy test machine still gets there), then sleeps.
BURN_THEN_SLEEP = (
    "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.3:\n    pass\n"
    "time.sleep(60)"
)


def sample(
    identity: Hashable = (1, 100.0),
    create_time: float = 100.0,
    user: float = 1.0,
    system: float = 0.5,
    open_files: int | None = 3,
) -> ProcessSample:
    return ProcessSample(
        identity=identity,
        create_time=create_time,
        cpu_user_seconds=user,
        cpu_system_seconds=system,
        resident_bytes=1_000,
        virtual_bytes=5_000,
        threads=2,
        open_files=open_files,
    )


def by_name(families: list[MetricFamily]) -> dict[str, MetricFamily]:
    names = [f.name for f in families]
    assert len(names) == len(set(names)), f"a family is emitted twice: {names}"
    return {f.name: f for f in families}


def value(families: list[MetricFamily], name: str, **labels: str) -> float:
    matching = [s.value for s in by_name(families)[name].samples if dict(s.labels) == labels]
    assert len(matching) == 1, f"{name}{labels}: {matching}"
    assert isinstance(matching[0], float | int)
    return matching[0]


def cpu_total(families: list[MetricFamily], group: str) -> float:
    return value(families, "erp_process_group_cpu_seconds_total", group=group, mode="user") + value(
        families, "erp_process_group_cpu_seconds_total", group=group, mode="system"
    )


def count(families: list[MetricFamily], group: str) -> float:
    return value(families, "erp_process_group_processes", group=group)


def assert_declared(families: list[MetricFamily]) -> None:
    declared = {spec.name: spec for spec in ProcessGroupCheck.metrics}
    for family in families:
        assert family.spec == declared[family.name]
        for s in family.samples:
            assert set(s.labels) == set(family.spec.labels)


CTX = RunContext(timeout=5)


# --- pure: snapshot -> families --------------------------------------------------------------------


def test_group_values_are_summed_over_the_member_processes() -> None:
    processes = (
        sample(identity=(1, 100.0), create_time=100.0, open_files=3),
        sample(identity=(2, 90.0), create_time=90.0, open_files=4),
    )
    snapshot = ProcessGroupSnapshot("erp", processes, CpuTotals(user_seconds=7.0, system_seconds=2.0))

    families = process_group_to_families(snapshot)

    assert value(families, "erp_process_group_processes", group="erp") == 2
    assert value(families, "erp_process_group_cpu_seconds_total", group="erp", mode="user") == 7.0
    assert value(families, "erp_process_group_cpu_seconds_total", group="erp", mode="system") == 2.0
    assert value(families, "erp_process_group_resident_memory_bytes", group="erp") == 2_000
    assert value(families, "erp_process_group_virtual_memory_bytes", group="erp") == 10_000
    assert value(families, "erp_process_group_threads", group="erp") == 4
    assert value(families, "erp_process_group_open_files", group="erp") == 7
    assert value(families, "erp_process_group_oldest_start_time_seconds", group="erp") == 90.0


def test_a_full_snapshot_emits_every_declared_family() -> None:
    snapshot = ProcessGroupSnapshot("erp", (sample(),), CpuTotals(1.0, 0.5))

    families = process_group_to_families(snapshot)

    assert {f.name for f in families} == {spec.name for spec in ProcessGroupCheck.metrics}
    assert_declared(families)


def test_open_files_leave_out_processes_that_could_not_be_read() -> None:
    processes = (sample(identity=1, open_files=None), sample(identity=2, open_files=5))

    families = process_group_to_families(ProcessGroupSnapshot("erp", processes, CpuTotals(0, 0)))

    assert value(families, "erp_process_group_open_files", group="erp") == 5


def test_open_files_are_absent_when_no_process_could_be_read() -> None:
    processes = (sample(identity=1, open_files=None), sample(identity=2, open_files=None))

    families = process_group_to_families(ProcessGroupSnapshot("erp", processes, CpuTotals(0, 0)))

    assert "erp_process_group_open_files" not in by_name(families)
    assert value(families, "erp_process_group_processes", group="erp") == 2


def test_a_group_that_never_had_members_emits_only_its_count() -> None:
    families = process_group_to_families(ProcessGroupSnapshot("erp", (), cpu=None))

    assert [f.name for f in families] == ["erp_process_group_processes"]
    assert value(families, "erp_process_group_processes", group="erp") == 0


def test_a_group_whose_members_are_gone_keeps_its_cpu_counter_and_loses_the_rest() -> None:
    families = process_group_to_families(ProcessGroupSnapshot("erp", (), CpuTotals(3.0, 1.0)))

    assert [f.name for f in families] == [
        "erp_process_group_processes",
        "erp_process_group_cpu_seconds_total",
    ]
    assert cpu_total(families, "erp") == 4.0


# --- pure: CPU accounting --------------------------------------------------------------------------


def test_cpu_totals_are_none_until_the_group_has_a_member() -> None:
    assert CpuAccountant().update([]) is None


def test_cpu_totals_follow_the_live_members() -> None:
    accountant = CpuAccountant()
    accountant.update([sample(identity="a", user=1.0, system=0.5)])

    totals = accountant.update([sample(identity="a", user=2.0, system=0.75)])

    assert totals == CpuTotals(user_seconds=2.0, system_seconds=0.75)


def test_cpu_time_of_an_exited_member_is_kept() -> None:
    accountant = CpuAccountant()
    accountant.update(
        [sample(identity="a", user=5.0, system=1.0), sample(identity="b", user=1.0, system=0.0)]
    )

    totals = accountant.update([sample(identity="b", user=1.5, system=0.0)])

    assert totals == CpuTotals(user_seconds=6.5, system_seconds=1.0)


def test_cpu_time_is_kept_when_all_members_exit() -> None:
    accountant = CpuAccountant()
    accountant.update([sample(identity="a", user=5.0, system=1.0)])

    assert accountant.update([]) == CpuTotals(user_seconds=5.0, system_seconds=1.0)
    assert accountant.update([]) == CpuTotals(user_seconds=5.0, system_seconds=1.0)


def test_a_reused_pid_is_a_new_member() -> None:
    accountant = CpuAccountant()
    accountant.update([sample(identity=(42, 100.0), user=5.0, system=1.0)])

    # Same PID, later creation time: the old process exited and a new one got its PID.
    totals = accountant.update([sample(identity=(42, 200.0), user=0.25, system=0.0)])

    assert totals == CpuTotals(user_seconds=5.25, system_seconds=1.0)


# --- pure: matching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name_pattern", "cmdline_pattern", "expected"),
    [
        ("^java$", None, True),
        ("^python", None, False),
        (None, r"-Dapp=erp\b", True),
        ("^java$", r"-Dapp=erp\b", True),
        ("^java$", r"-Dapp=crm\b", False),
        ("^python", r"-Dapp=erp\b", False),
    ],
)
def test_both_given_patterns_must_match(
    name_pattern: str | None, cmdline_pattern: str | None, expected: bool
) -> None:
    compiled_name = None if name_pattern is None else re.compile(name_pattern)
    compiled_cmdline = None if cmdline_pattern is None else re.compile(cmdline_pattern)

    matched = process_matches("java", ["/usr/bin/java", "-Dapp=erp", "Main"], compiled_name, compiled_cmdline)

    assert matched is expected


def test_a_process_whose_cmdline_could_not_be_read_does_not_match_a_cmdline_pattern() -> None:
    assert not process_matches("java", None, None, re.compile("erp"))


def test_a_check_without_patterns_is_rejected() -> None:
    with pytest.raises(ValueError, match="name_pattern, cmdline_pattern or both"):
        ProcessGroupCheck("erp", "erp", name_pattern=None, cmdline_pattern=None)


def test_an_invalid_pattern_is_rejected() -> None:
    with pytest.raises(ValueError, match="cmdline_pattern"):
        ProcessGroupCheck("erp", "erp", name_pattern=None, cmdline_pattern="(")


def test_a_cancelled_run_fails_with_a_timeout() -> None:
    ctx = RunContext(timeout=5)
    ctx.cancel.cancel()

    with pytest.raises(CheckError) as excinfo:
        ProcessGroupCheck("erp", "erp", name_pattern=".", cmdline_pattern=None).run(ctx)

    assert excinfo.value.reason is ErrorReason.TIMEOUT


# --- real processes --------------------------------------------------------------------------------


@pytest.fixture
def marker() -> str:
    return f"erp-test-marker-{uuid.uuid4().hex}"


@pytest.fixture
def spawn(marker: str) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Starts `python -c CODE MARKER` children; all are killed and reaped at teardown."""
    children: list[subprocess.Popen[bytes]] = []

    def start(code: str) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-c", code, marker], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait(timeout=10)


def stop(child: subprocess.Popen[bytes]) -> None:
    child.kill()
    child.wait(timeout=10)


def wait_for(
    check: ProcessGroupCheck, predicate: Callable[[list[MetricFamily]], bool], timeout: float = 10
) -> list[MetricFamily]:
    deadline = time.monotonic() + timeout
    while True:
        families = check.run(CTX)
        if predicate(families) or time.monotonic() > deadline:
            return families
        time.sleep(0.05)


def test_matching_children_are_counted_with_their_memory_threads_and_start_time(
    spawn: Callable[[str], subprocess.Popen[bytes]], marker: str
) -> None:
    before = time.time()
    spawn(SLEEP)
    spawn(SLEEP)
    check = ProcessGroupCheck("erp-app", "erp-app", name_pattern=None, cmdline_pattern=re.escape(marker))

    families = wait_for(check, lambda f: count(f, "erp-app") == 2)

    assert count(families, "erp-app") == 2
    assert value(families, "erp_process_group_resident_memory_bytes", group="erp-app") > 0
    assert value(families, "erp_process_group_virtual_memory_bytes", group="erp-app") > 0
    assert value(families, "erp_process_group_threads", group="erp-app") >= 2
    assert value(families, "erp_process_group_open_files", group="erp-app") >= 0  # our own children
    oldest = value(families, "erp_process_group_oldest_start_time_seconds", group="erp-app")
    assert before - 2 <= oldest <= time.time()
    assert cpu_total(families, "erp-app") >= 0
    assert_declared(families)


def test_name_and_cmdline_patterns_must_both_match_real_processes(
    spawn: Callable[[str], subprocess.Popen[bytes]], marker: str
) -> None:
    child = spawn(SLEEP)
    name = psutil.Process(child.pid).name()
    matching = ProcessGroupCheck(
        "a", "a", name_pattern=f"^{re.escape(name)}$", cmdline_pattern=re.escape(marker)
    )
    other_name = ProcessGroupCheck(
        "b", "b", name_pattern="^no-such-binary$", cmdline_pattern=re.escape(marker)
    )

    assert count(wait_for(matching, lambda f: count(f, "a") == 1), "a") == 1
    assert count(other_name.run(CTX), "b") == 0


def test_cpu_total_does_not_decrease_when_a_member_exits(
    spawn: Callable[[str], subprocess.Popen[bytes]], marker: str
) -> None:
    spawn(SLEEP)
    burner = spawn(BURN_THEN_SLEEP)
    check = ProcessGroupCheck("erp-app", "erp-app", name_pattern=None, cmdline_pattern=re.escape(marker))
    families = wait_for(check, lambda f: count(f, "erp-app") == 2 and cpu_total(f, "erp-app") >= 0.3)
    before_exit = cpu_total(families, "erp-app")
    assert before_exit >= 0.3, "the burning child did not get its CPU time in 10 s"

    stop(burner)
    families = check.run(CTX)

    assert count(families, "erp-app") == 1
    assert cpu_total(families, "erp-app") >= before_exit


def test_count_is_zero_and_nothing_breaks_when_every_member_is_gone(
    spawn: Callable[[str], subprocess.Popen[bytes]], marker: str
) -> None:
    children = [spawn(SLEEP), spawn(SLEEP)]
    check = ProcessGroupCheck("erp-app", "erp-app", name_pattern=None, cmdline_pattern=re.escape(marker))
    families = wait_for(check, lambda f: count(f, "erp-app") == 2)
    before_exit = cpu_total(families, "erp-app")

    for child in children:
        stop(child)
    families = check.run(CTX)

    assert count(families, "erp-app") == 0
    assert cpu_total(families, "erp-app") >= before_exit
    assert {f.name for f in families} == {
        "erp_process_group_processes",
        "erp_process_group_cpu_seconds_total",
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="zombies as Linux shows them")
def test_a_killed_member_not_yet_reaped_by_its_parent_no_longer_counts(
    spawn: Callable[[str], subprocess.Popen[bytes]], marker: str
) -> None:
    spawn(SLEEP)
    victim = spawn(SLEEP)
    name = psutil.Process(victim.pid).name()
    by_cmdline = ProcessGroupCheck("c", "c", name_pattern=None, cmdline_pattern=re.escape(marker))
    by_name_only = ProcessGroupCheck("n", "n", name_pattern=f"^{re.escape(name)}$", cmdline_pattern=None)
    wait_for(by_cmdline, lambda f: count(f, "c") == 2)
    live_by_name = count(by_name_only.run(CTX), "n")

    victim.kill()  # not waited for: it stays a zombie until the fixture reaps it
    deadline = time.monotonic() + 10
    while psutil.Process(victim.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.01)

    assert count(by_cmdline.run(CTX), "c") == 1
    assert count(by_name_only.run(CTX), "n") <= live_by_name - 1


def test_a_pattern_that_matches_nothing_gives_count_zero_and_no_other_series() -> None:
    check = ProcessGroupCheck(
        "ghost", "ghost", name_pattern=None, cmdline_pattern=f"no-such-process-{uuid.uuid4().hex}"
    )

    families = check.run(CTX)

    assert [f.name for f in families] == ["erp_process_group_processes"]
    assert count(families, "ghost") == 0


def test_declared_metrics_follow_the_naming_guide() -> None:
    for spec in ProcessGroupCheck.metrics:
        assert spec.name.startswith("erp_process_group_")
        assert (spec.type is MetricType.COUNTER) == spec.name.endswith("_total")
        assert "group" in spec.labels
        assert spec.help.endswith(".") and spec.help[0].isupper()
