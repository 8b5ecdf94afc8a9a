"""The examples in the docs work: the audit guide's audit file loads and runs on a real Tryton database."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPORTER = str(Path(sys.executable).parent / "erp-exporter")


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_the_audit_guides_example_audit_runs_on_a_real_tryton_database(
    tryton_sqlite_scratch: Path, tmp_path: Path
) -> None:
    audit_file = next(block for block in yaml_blocks(ROOT / "docs" / "audits.md") if block.startswith("# audits/"))
    (tmp_path / "audits").mkdir()
    (tmp_path / "audits" / "sales.yml").write_text(audit_file, encoding="utf-8")
    config = tmp_path / "erp-exporter.yml"
    config.write_text(
        f"""\
targets:
  - name: erp
    driver: SQLite3
    connection: {{database: {tryton_sqlite_scratch}}}
    checks:
      - kind: audits
        files: [audits/sales.yml]
""",
        encoding="utf-8",
    )
    name = re.search(r"- name: (\S+)", audit_file)
    assert name is not None
    result = subprocess.run(
        [EXPORTER, "audit", name.group(1), f"--config.file={config}"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^violations\s+\d+ ", result.stdout, re.M), result.stdout
    assert "owner         sales" in result.stdout
