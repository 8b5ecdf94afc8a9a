"""What the generators of committed files share: Prometheus durations, YAML with readable multi-line
strings, and writing the files or checking that the committed ones are current."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = (7 * 86400, 86400, 3600, 60, 1)


def duration_seconds(text: str) -> int:
    """Seconds of a Prometheus duration ("1h30m" -> 5400)."""
    match = _DURATION.match(str(text))
    if not match or not text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(part) * unit for part, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if part)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def dump_yaml(document: Any) -> str:
    """YAML in the order given, multi-line strings (PromQL) as literal blocks, no line wrapping."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def write_files(out_dir: Path, files: Mapping[str, str]) -> list[Path]:
    """Write file name -> text into `out_dir` (made when missing); the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def write_or_check(
    expected: Mapping[Path, str], check: bool, generator: str, shown: Callable[[Path], object] = str
) -> int:
    """Write every file, or with `check` report each that differs from what it should be (exit 1)."""
    if check:
        stale = [path for path, text in expected.items() if not path.is_file() or path.read_text() != text]
        for path in stale:
            print(f"out of date: {path} (run {generator})", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(shown(path))
    return 0
