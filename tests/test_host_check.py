"""The host check: pure snapshot-to-families tests with built snapshots, and runs on this machine."""

from __future__ import annotations

import re
import sys
import threading
import time

import pytest

from exporter.checks.base import RunContext
from exporter.checks.host import (
    DEFAULT_EXCLUDED_FSTYPES,
    DEFAULT_EXCLUDED_MOUNTPOINTS_REGEX,
    DiskSnapshot,
    FilesystemSnapshot,
    FilesystemUsage,
    HostCheck,
    HostSnapshot,
    MemorySnapshot,
    MountStatGuard,
    NetworkSnapshot,
    Partition,
    SwapSnapshot,
    host_to_families,
    read_cpu_seconds,
    select_partitions,
)
from exporter.metrics import MetricFamily, MetricType

ROOT = Partition(device="/dev/sda1", mountpoint="/", fstype="ext4")
DATA = Partition(device="/dev/sdb1", mountpoint="/data", fstype="xfs")
ROOT_USAGE = FilesystemUsage(size_bytes=100_000, free_bytes=40_000, avail_bytes=35_000)

FULL_SNAPSHOT = HostSnapshot(
    cpu_seconds={"user": 10.5, "system": 2.25, "idle": 100.0, "iowait": 0.5},
    cpus=4,
    memory=MemorySnapshot(total_bytes=8_000, available_bytes=5_000, used_bytes=3_000),
    swap=SwapSnapshot(total_bytes=2_000, used_bytes=100),
    filesystems=(FilesystemSnapshot(ROOT, ROOT_USAGE),),
    disks=(
        DiskSnapshot(
            device="sda",
            read_bytes=1_024,
            written_bytes=2_048,
            reads_completed=3,
            writes_completed=4,
            io_time_seconds=1.5,
        ),
    ),
    networks=(
        NetworkSnapshot(
            device="eth0",
            receive_bytes=10,
            transmit_bytes=20,
            receive_errors=1,
            transmit_errors=2,
            receive_drop=3,
            transmit_drop=4,
        ),
    ),
    load=(0.5, 0.25, 0.125),
    boot_time_seconds=1_700_000_000.0,
)


def by_name(families: list[MetricFamily]) -> dict[str, MetricFamily]:
    names = [f.name for f in families]
    assert len(names) == len(set(names)), f"a family is emitted twice: {names}"
    return {f.name: f for f in families}


def samples(families: list[MetricFamily], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    family = by_name(families)[name]
    result: dict[tuple[tuple[str, str], ...], float] = {}
    for sample in family.samples:
        assert isinstance(sample.value, float | int)
        key = tuple(sorted(sample.labels.items()))
        assert key not in result, f"duplicate series in {name}: {key}"
        result[key] = sample.value
    return result


def single(families: list[MetricFamily], name: str) -> float:
    values = samples(families, name)
    assert list(values) == [()]
    return values[()]


def mountpoints(families: list[MetricFamily]) -> set[str]:
    family = by_name(families).get("erp_host_filesystem_size_bytes")
    return set() if family is None else {s.labels["mountpoint"] for s in family.samples}


# --- pure: snapshot -> families --------------------------------------------------------------------


def test_cpu_seconds_are_published_per_mode() -> None:
    families = host_to_families(FULL_SNAPSHOT)

    assert samples(families, "erp_host_cpu_seconds_total") == {
        (("mode", "user"),): 10.5,
        (("mode", "system"),): 2.25,
        (("mode", "idle"),): 100.0,
        (("mode", "iowait"),): 0.5,
    }
    assert single(families, "erp_host_cpus") == 4


def test_memory_and_swap_are_published_in_bytes() -> None:
    families = host_to_families(FULL_SNAPSHOT)

    assert single(families, "erp_host_memory_total_bytes") == 8_000
    assert single(families, "erp_host_memory_available_bytes") == 5_000
    assert single(families, "erp_host_memory_used_bytes") == 3_000
    assert single(families, "erp_host_swap_total_bytes") == 2_000
    assert single(families, "erp_host_swap_used_bytes") == 100


def test_filesystem_series_carry_device_mountpoint_and_fstype() -> None:
    families = host_to_families(FULL_SNAPSHOT)

    key = (("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/"))
    assert samples(families, "erp_host_filesystem_size_bytes") == {key: 100_000}
    assert samples(families, "erp_host_filesystem_free_bytes") == {key: 40_000}
    assert samples(families, "erp_host_filesystem_avail_bytes") == {key: 35_000}


def test_filesystem_whose_read_failed_is_absent() -> None:
    snapshot = HostSnapshot(
        filesystems=(FilesystemSnapshot(ROOT, ROOT_USAGE), FilesystemSnapshot(DATA, usage=None))
    )

    families = host_to_families(snapshot)

    assert mountpoints(families) == {"/"}
    for name in ("erp_host_filesystem_free_bytes", "erp_host_filesystem_avail_bytes"):
        assert [s.labels["mountpoint"] for s in by_name(families)[name].samples] == ["/"]


def test_no_filesystem_families_when_no_filesystem_could_be_read() -> None:
    families = host_to_families(HostSnapshot(filesystems=(FilesystemSnapshot(DATA, usage=None),)))

    assert not any(f.name.startswith("erp_host_filesystem_") for f in families)


def test_disk_counters_are_published_per_device_with_io_time_in_seconds() -> None:
    families = host_to_families(FULL_SNAPSHOT)

    sda = (("device", "sda"),)
    assert samples(families, "erp_host_disk_read_bytes_total") == {sda: 1_024}
    assert samples(families, "erp_host_disk_written_bytes_total") == {sda: 2_048}
    assert samples(families, "erp_host_disk_reads_completed_total") == {sda: 3}
    assert samples(families, "erp_host_disk_writes_completed_total") == {sda: 4}
    assert samples(families, "erp_host_disk_io_time_seconds_total") == {sda: 1.5}


def test_disk_io_time_is_absent_where_the_platform_has_no_busy_time() -> None:
    disk = DiskSnapshot("PhysicalDrive0", 1, 2, 3, 4, io_time_seconds=None)

    families = by_name(host_to_families(HostSnapshot(disks=(disk,))))

    assert "erp_host_disk_io_time_seconds_total" not in families
    assert "erp_host_disk_read_bytes_total" in families


def test_network_counters_are_published_per_device() -> None:
    families = host_to_families(FULL_SNAPSHOT)

    eth0 = (("device", "eth0"),)
    assert samples(families, "erp_host_network_receive_bytes_total") == {eth0: 10}
    assert samples(families, "erp_host_network_transmit_bytes_total") == {eth0: 20}
    assert samples(families, "erp_host_network_receive_errors_total") == {eth0: 1}
    assert samples(families, "erp_host_network_transmit_errors_total") == {eth0: 2}
    assert samples(families, "erp_host_network_receive_drop_total") == {eth0: 3}
    assert samples(families, "erp_host_network_transmit_drop_total") == {eth0: 4}


def test_load_averages_and_boot_time_are_published_when_available() -> None:
    families = host_to_families(FULL_SNAPSHOT)

    assert single(families, "erp_host_load1") == 0.5
    assert single(families, "erp_host_load5") == 0.25
    assert single(families, "erp_host_load15") == 0.125
    assert single(families, "erp_host_boot_time_seconds") == 1_700_000_000.0


def test_load_averages_are_absent_when_unavailable() -> None:
    families = by_name(host_to_families(HostSnapshot(cpu_seconds={"user": 1.0}, load=None)))

    assert not {"erp_host_load1", "erp_host_load5", "erp_host_load15"} & set(families)


def test_an_empty_snapshot_emits_no_families() -> None:
    assert host_to_families(HostSnapshot()) == []


def test_every_family_of_a_full_snapshot_is_declared_with_its_type_and_labels() -> None:
    declared = {spec.name: spec for spec in HostCheck.metrics}

    families = host_to_families(FULL_SNAPSHOT)

    assert {f.name for f in families} == set(declared)
    for family in families:
        assert family.spec == declared[family.name]
        for sample in family.samples:
            assert set(sample.labels) == set(family.spec.labels)


def test_declared_metrics_follow_the_naming_guide() -> None:
    for spec in HostCheck.metrics:
        assert spec.name.startswith("erp_host_")
        assert (spec.type is MetricType.COUNTER) == spec.name.endswith("_total")
        assert spec.help.endswith(".") and spec.help[0].isupper()


# --- pure: which filesystems are measured -----------------------------------------------------------


def select(*partitions: Partition) -> list[Partition]:
    return select_partitions(
        partitions, DEFAULT_EXCLUDED_FSTYPES, re.compile(DEFAULT_EXCLUDED_MOUNTPOINTS_REGEX)
    )


def test_excluded_fstypes_are_not_selected() -> None:
    pseudo = [
        Partition("proc", "/host/proc", "proc"),
        Partition("tmpfs", "/run", "tmpfs"),
        Partition("cgroup2", "/host/cgroup", "cgroup2"),
        Partition("/dev/loop3", "/snap/core/1", "squashfs"),
    ]

    assert select(ROOT, *pseudo, DATA) == [ROOT, DATA]


def test_overlay_root_of_a_container_is_selected() -> None:
    overlay = Partition("overlay", "/", "overlay")

    assert select(overlay) == [overlay]


def test_excluded_mountpoints_are_not_selected() -> None:
    layers = [
        Partition("/dev/sda1", "/dev/termination-log", "ext4"),
        Partition("/dev/sda1", "/var/lib/docker/overlay2/abc/merged", "ext4"),
        Partition("/dev/sda1", "/sys/firmware", "ext4"),
    ]

    assert select(ROOT, *layers) == [ROOT]


def test_only_the_last_mount_on_a_mountpoint_is_selected() -> None:
    hidden = Partition("/dev/sdc1", "/data", "ext4")
    tmpfs_over_data = Partition("tmpfs", "/data", "tmpfs")

    assert select(hidden, DATA) == [DATA]
    assert select(DATA, tmpfs_over_data) == []


# --- reading ---------------------------------------------------------------------------------------


def test_stat_that_fails_leaves_the_filesystem_out() -> None:
    def stat(mountpoint: str) -> FilesystemUsage:
        if mountpoint == "/stale-nfs":
            raise OSError(116, "Stale file handle")
        return ROOT_USAGE

    usage = MountStatGuard(stat).stat_all(["/", "/stale-nfs"], timeout=5)

    assert usage == {"/": ROOT_USAGE}


def test_hung_stat_is_skipped_until_it_returns() -> None:
    release = threading.Event()
    calls: list[str] = []

    def stat(mountpoint: str) -> FilesystemUsage:
        calls.append(mountpoint)
        if mountpoint == "/hung-nfs":
            release.wait(10)
        return ROOT_USAGE

    guard = MountStatGuard(stat)
    try:
        assert guard.stat_all(["/", "/hung-nfs"], timeout=0.2) == {"/": ROOT_USAGE}
        assert guard.stat_all(["/", "/hung-nfs"], timeout=0.2) == {"/": ROOT_USAGE}
        assert calls.count("/hung-nfs") == 1
    finally:
        release.set()

    for _ in range(100):  # the abandoned stat returns, and then the mountpoint is tried again
        usage = guard.stat_all(["/hung-nfs"], timeout=0.2)
        if usage:
            break
        time.sleep(0.02)
    assert usage == {"/hung-nfs": ROOT_USAGE}


def test_cpu_modes_counted_inside_other_modes_are_not_read() -> None:
    modes = read_cpu_seconds()

    assert {"user", "system", "idle"} <= set(modes)
    assert not {"guest", "guest_nice", "interrupt", "dpc"} & set(modes)


def test_invalid_regex_is_rejected_when_the_check_is_built() -> None:
    with pytest.raises(ValueError, match="include_devices"):
        HostCheck(include_devices="(")


# --- the real machine ------------------------------------------------------------------------------


def test_run_on_this_machine_returns_cpu_memory_root_filesystem_and_boot_time() -> None:
    families = HostCheck().run(RunContext(timeout=5))

    modes = {s.labels["mode"] for s in by_name(families)["erp_host_cpu_seconds_total"].samples}
    assert {"user", "system", "idle"} <= modes
    assert single(families, "erp_host_cpus") >= 1
    assert single(families, "erp_host_memory_total_bytes") > 0
    assert (
        0
        < single(families, "erp_host_memory_available_bytes")
        <= single(families, "erp_host_memory_total_bytes")
    )
    if sys.platform != "win32":
        assert "/" in mountpoints(families)
    assert 0 < single(families, "erp_host_boot_time_seconds") < time.time()


def test_run_on_this_machine_emits_only_declared_erp_host_families() -> None:
    declared = {spec.name: spec for spec in HostCheck.metrics}

    families = HostCheck().run(RunContext(timeout=5))

    for family in families:
        assert family.name.startswith("erp_host_")
        assert family.spec == declared[family.name]
        assert family.samples
        for sample in family.samples:
            assert set(sample.labels) == set(family.spec.labels)
    by_name(families)  # no family twice
    for name in declared:
        if name.startswith("erp_host_filesystem_"):
            samples(families, name)  # no duplicate series, even with a mountpoint listed twice


@pytest.mark.skipif(sys.platform == "win32", reason="the mount table below is a Unix one")
def test_run_on_this_machine_leaves_pseudo_filesystems_out() -> None:
    families = HostCheck().run(RunContext(timeout=5))

    fstypes = {s.labels["fstype"] for s in by_name(families)["erp_host_filesystem_size_bytes"].samples}
    assert not fstypes & DEFAULT_EXCLUDED_FSTYPES
    assert not {m for m in mountpoints(families) if m.startswith(("/proc", "/sys", "/dev"))}


def test_include_devices_limits_disks_and_network_interfaces() -> None:
    families = by_name(HostCheck(include_devices=r"^lo$").run(RunContext(timeout=5)))

    receive = families.get("erp_host_network_receive_bytes_total")
    assert receive is None or {s.labels["device"] for s in receive.samples} == {"lo"}
    read = families.get("erp_host_disk_read_bytes_total")
    assert read is None or {s.labels["device"] for s in read.samples} <= {"lo"}
