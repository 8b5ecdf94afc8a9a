"""Build the embedded demo: a small SQLite ERP database for `make demo`.

It stands in for a real ERP until the Tryton pack lands: a few master-data and document tables with
rows, enough for the exporter's database checks to have something real to look at. Rebuilt from
scratch on every run, so the demo always starts from the same state.
"""

from __future__ import annotations

import random
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

SCHEMA = """
CREATE TABLE res_user (id INTEGER PRIMARY KEY, login TEXT NOT NULL UNIQUE, active INTEGER NOT NULL);
CREATE TABLE user_session (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES res_user(id),
                           created TEXT NOT NULL, last_seen TEXT NOT NULL);
CREATE TABLE party (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, tax_id TEXT);
CREATE TABLE sale_order (id INTEGER PRIMARY KEY, party_id INTEGER NOT NULL REFERENCES party(id),
                         state TEXT NOT NULL, order_date TEXT NOT NULL, total NUMERIC NOT NULL);
CREATE TABLE job_log (id INTEGER PRIMARY KEY, job TEXT NOT NULL, started TEXT NOT NULL,
                      finished TEXT NOT NULL, ok INTEGER NOT NULL);
CREATE INDEX sale_order_state ON sale_order(state);
"""


def build(path: Path, seed: int = 42) -> None:
    """Create the demo database at `path`, replacing any previous one."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO res_user VALUES (?, ?, 1)", [(i, f"user{i}") for i in range(1, 21)])
        db.executemany(
            "INSERT INTO user_session VALUES (?, ?, ?, ?)",
            [
                (i, i, str(now - timedelta(hours=2)), str(now - timedelta(minutes=rng.randint(0, 30))))
                for i in range(1, 8)
            ],
        )
        db.executemany(
            "INSERT INTO party VALUES (?, ?, ?, ?)",
            [
                (i, f"Customer {i}", f"c{i}@example.com" if i % 4 else None, f"TAX{i}" if i % 5 else None)
                for i in range(1, 51)
            ],
        )
        db.executemany(
            "INSERT INTO sale_order VALUES (?, ?, ?, ?, ?)",
            [
                (
                    i,
                    rng.randint(1, 50),
                    rng.choice(["draft", "confirmed", "done"]),
                    str((now - timedelta(days=rng.randint(0, 60))).date()),
                    rng.randint(100, 10000),
                )
                for i in range(1, 301)
            ],
        )
        db.executemany(
            "INSERT INTO job_log VALUES (?, ?, ?, ?, ?)",
            [
                (
                    i,
                    rng.choice(["invoice_run", "stock_valuation", "backup"]),
                    str(now - timedelta(minutes=10 * i)),
                    str(now - timedelta(minutes=10 * i - 1)),
                    1,
                )
                for i in range(1, 40)
            ],
        )
    print(f"demo database ready: {path}")


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "var/demo/erp-demo.db"))
