"""What the host check leaves out unless the config says otherwise (config defaults and the check's own)."""

from __future__ import annotations

# Pseudo and virtual filesystems with no meaningful size, and read-only images that are always full
# (squashfs snaps, erofs, CD images) and would only trip "filesystem full" alerts. overlay stays in:
# it is the root filesystem of a container.
DEFAULT_EXCLUDED_FSTYPES: frozenset[str] = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "erofs",
        "fusectl",
        "hugetlbfs",
        "iso9660",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
    }
)

# node_exporter's default: kernel interfaces, systemd credentials and container runtimes' layers.
DEFAULT_EXCLUDED_MOUNTPOINTS_REGEX = (
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
