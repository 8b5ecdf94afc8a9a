"""The Tryton pack on a real Tryton 8.0: real databases (SQLite and PostgreSQL), a real trytond server, real
JSON-RPC logins, a real trytond-cron run. Every number the pack reports is compared with a count made
independently, straight from the database by the test (sqlite3 module / psql as superuser).

Tests that need exact numbers work on a private copy of the seeded database (`erp`: a SQLite scratch copy or
a PostgreSQL database created from the seeded one as a template) with their own trytond server when they
log in. Rows that only Tryton's internals would write (queue tasks with a chosen age, errors, cron log rows
with identical timestamps) are inserted by the test with its own direct connection, never by the exporter.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tryton
from harness import odbc_database, running_app, wait_until
from servers import PostgresServer
from tryton import SEED_PASSWORD, TrytonHTTPError, TrytonInstall, TrytonRPC, TrytonServer

from exporter.checks.base import Check, RunContext
from exporter.checks.pack import JobLogCheck, build_pack_checks
from exporter.config.loader import LoadedConfig
from exporter.config.model import ExporterConfig, PackCheckConfig
from exporter.db.target import TargetDatabase
from exporter.metrics import HistogramValue, MetricFamily

UTC = datetime.UTC
ADMIN_PASSWORD = tryton.ADMIN_PASSWORD
_names = itertools.count(1)


# -- the ERP under test ------------------------------------------------------------------------------


@dataclass
class Erp:
    """One private Tryton database, how the exporter reaches it, and the test's own direct access to it."""

    backend: str  # "sqlite" or "postgresql"
    name: str  # the Tryton database name
    config: Path  # trytond.conf for trytond and trytond-cron
    database: TargetDatabase  # the exporter's (read-only) access
    rows: Callable[[str], list[tuple[str, ...]]]  # the test's independent reads, values as text
    execute: Callable[[str], None]  # the test's own writes (fixture data only)

    def count(self, sql: str) -> int:
        return int(self.rows(sql)[0][0])


def _database(driver: str, attributes: dict[str, str], user: str | None, password: str | None) -> TargetDatabase:
    return odbc_database(driver, attributes, user, password, name="tryton")


def _sqlite_erp(path: Path) -> Erp:
    def rows(sql: str) -> list[tuple[str, ...]]:
        return [tuple("" if v is None else str(v) for v in row) for row in tryton.sqlite_rows(path, sql)]

    def execute(sql: str) -> None:
        tryton.sqlite_execute(path, sql)

    database = _database("SQLite3", {"database": str(path)}, None, None)
    return Erp("sqlite", path.stem, tryton.sqlite_config_path(path), database, rows, execute)


def _postgres_erp(postgres: PostgresServer, name: str, workdir: Path) -> Erp:
    def rows(sql: str) -> list[tuple[str, ...]]:
        # COPY writes tab-separated text (psql -A would join with '|', which job names contain)
        text = postgres.psql(f"COPY ({sql}) TO STDOUT;\n", database=name)
        return [tuple("" if v == "\\N" else v for v in line.split("\t")) for line in text.splitlines() if line]

    def execute(sql: str) -> None:
        postgres.psql(sql, database=name)

    attributes = {"server": postgres.host, "port": str(postgres.port), "database": name}
    database = _database("PostgreSQL Unicode", attributes, "exporter", "exporterpw")
    config = tryton.postgres_database_config(postgres, workdir)
    return Erp("postgresql", name, config, database, rows, execute)


@pytest.fixture(params=["sqlite", "postgresql"])
def erp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Erp]:
    """A private copy of the seeded Tryton database, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        scratch: Path = request.getfixturevalue("tryton_sqlite_scratch")
        erp = _sqlite_erp(scratch)
        yield erp
        erp.database.close()
        return
    postgres: PostgresServer = request.getfixturevalue("postgres")
    template: str = request.getfixturevalue("tryton_postgres_db")
    name = f"tryton_pack_{next(_names)}_{uuid.uuid4().hex[:6]}"
    postgres.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}";\n', database="postgres")
    tryton.grant_read_only(postgres, name, "exporter")
    erp = _postgres_erp(postgres, name, tmp_path / "tryton-pg")
    try:
        yield erp
    finally:
        erp.database.close()
        postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);\n', database="postgres")


@pytest.fixture
def erp_server(erp: Erp, tryton_install: TrytonInstall) -> Iterator[TrytonServer]:
    """A trytond serving the `erp` database."""
    with TrytonServer(tryton_install, erp.config, erp.name) as server:
        yield server


@pytest.fixture
def erp_rpc(erp_server: TrytonServer) -> Iterator[TrytonRPC]:
    with TrytonRPC(erp_server.url, erp_server.database) as client:
        yield client


# -- running the pack's checks ----------------------------------------------------------------------


def pack_checks(database: TargetDatabase, **params: float) -> dict[str, Check]:
    """The checks of a `kind: pack, pack: tryton` entry, by query name."""
    entry = PackCheckConfig.model_validate({"kind": "pack", "pack": "tryton", "params": params})
    loaded = LoadedConfig(config=ExporterConfig(), source="test")
    return {built.name.split("/", 1)[1]: built.check for built in build_pack_checks(entry, database, loaded)}


def run(check: Check) -> list[MetricFamily]:
    return check.run(RunContext(timeout=20))


def value(families: list[MetricFamily], name: str, **labels: str) -> float | HistogramValue | None:
    for family in families:
        if family.name != name:
            continue
        for sample in family.samples:
            if all(sample.labels.get(key) == val for key, val in labels.items()):
                return sample.value
    return None


def series(families: list[MetricFamily], name: str) -> list[dict[str, str]]:
    return [dict(s.labels) for f in families if f.name == name for s in f.samples]


def histogram_count(families: list[MetricFamily], **labels: str) -> float:
    found = value(families, "erp_transaction_duration_seconds", **labels)
    if found is None:
        return 0.0
    assert isinstance(found, HistogramValue)
    return found.count


def utc_text(moment: datetime.datetime) -> str:
    """A naive UTC timestamp as Tryton stores it."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def seconds_since(text: str, now: datetime.datetime) -> float:
    stamp = datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)
    return (now - stamp).total_seconds()


# -- users and sessions -----------------------------------------------------------------------------


def test_n_users_logged_in_on_the_session_server_are_reported_exactly(
    tryton_rpc: TrytonRPC, tryton_sqlite_db: Path
) -> None:
    tryton.clear_sessions(tryton_sqlite_db)
    sessions = [tryton_rpc.login(login, SEED_PASSWORD) for login in ("alice", "bob", "carol", "dave")]
    erp = _sqlite_erp(tryton_sqlite_db)
    try:
        families = run(pack_checks(erp.database)["sessions"])
        assert erp.count("SELECT count(DISTINCT create_uid) FROM ir_session") == 4
        assert value(families, "erp_users_logged_in", pack="tryton") == 4
        assert value(families, "erp_sessions_active", pack="tryton") == 4
    finally:
        erp.database.close()
        for session in sessions:
            tryton_rpc.logout(session)


def test_users_and_sessions_count_each_user_once_and_each_session(erp: Erp, erp_rpc: TrytonRPC) -> None:
    logins = ["alice", "bob", "carol", "alice", "erin"]  # alice logs in twice: two sessions, one user
    for login in logins:
        erp_rpc.login(login, SEED_PASSWORD)
    families = run(pack_checks(erp.database)["sessions"])
    assert erp.count("SELECT count(DISTINCT create_uid) FROM ir_session") == 4
    assert erp.count("SELECT count(*) FROM ir_session") == 5
    assert value(families, "erp_users_logged_in", pack="tryton") == 4
    assert value(families, "erp_sessions_active", pack="tryton") == 5


def test_logout_removes_the_user_and_the_session(erp: Erp, erp_rpc: TrytonRPC) -> None:
    alice = erp_rpc.login("alice", SEED_PASSWORD)
    erp_rpc.login("bob", SEED_PASSWORD)
    erp_rpc.logout(alice)
    families = run(pack_checks(erp.database)["sessions"])
    assert erp.count("SELECT count(*) FROM ir_session") == 1
    assert value(families, "erp_users_logged_in") == 1
    assert value(families, "erp_sessions_active") == 1


def test_sessions_idle_longer_than_the_window_are_not_active(erp: Erp, erp_rpc: TrytonRPC) -> None:
    for login in ("alice", "bob", "carol"):
        erp_rpc.login(login, SEED_PASSWORD)
    now = now_utc()
    # carol's session was last used 20 minutes ago; bob's was created 2 h ago but used 5 minutes ago
    erp.execute(
        f"UPDATE ir_session SET create_date = '{utc_text(now - datetime.timedelta(minutes=20))}' "
        "WHERE create_uid = (SELECT id FROM res_user WHERE login = 'carol')"
    )
    erp.execute(
        f"UPDATE ir_session SET create_date = '{utc_text(now - datetime.timedelta(hours=2))}', "
        f"write_date = '{utc_text(now - datetime.timedelta(minutes=5))}' "
        "WHERE create_uid = (SELECT id FROM res_user WHERE login = 'bob')"
    )
    default_window = run(pack_checks(erp.database)["sessions"])  # 900 s
    assert value(default_window, "erp_users_logged_in") == 2
    assert value(default_window, "erp_sessions_active") == 2
    wider = run(pack_checks(erp.database, active_window_seconds=1800)["sessions"])
    assert value(wider, "erp_users_logged_in") == 3
    narrower = run(pack_checks(erp.database, active_window_seconds=120)["sessions"])
    assert value(narrower, "erp_users_logged_in") == 1


# -- failed logins ----------------------------------------------------------------------------------


def test_failed_logins_within_the_window_are_counted(erp: Erp, erp_rpc: TrytonRPC) -> None:
    for login in ("dave", "dave", "frank-does-not-exist"):
        with pytest.raises(TrytonHTTPError) as excinfo:
            erp_rpc.login(login, "Wrong-Passw0rd-2024")
        assert excinfo.value.status_code == 401
    now = now_utc()
    old = utc_text(now - datetime.timedelta(hours=1))
    erp.execute(
        "INSERT INTO res_user_login_attempt (login, ip_address, ip_network, create_date, create_uid) "
        f"VALUES ('erin', '127.0.0.1', '127.0.0.1/32', '{old}', 0)"
    )
    assert erp.count("SELECT count(*) FROM res_user_login_attempt") == 4
    families = run(pack_checks(erp.database)["login_failures"])
    assert value(families, "erp_login_failures", pack="tryton") == 3
    wider = run(pack_checks(erp.database, login_failure_window_seconds=7200)["login_failures"])
    assert value(wider, "erp_login_failures") == 4


# -- the background task queue ----------------------------------------------------------------------


def test_a_confirmed_sale_waits_in_the_queue_when_trytond_has_a_worker(
    erp: Erp, tryton_install: TrytonInstall
) -> None:
    # with [queue] worker = True, trytond leaves tasks to `trytond-worker` (not running here): they wait
    worker_config = erp.config.parent / "trytond-worker.conf"
    worker_config.write_text(erp.config.read_text() + "\n[queue]\nworker = True\n")
    before = erp.count("SELECT count(*) FROM ir_queue WHERE dequeued_at IS NULL AND finished_at IS NULL")
    with (
        TrytonServer(tryton_install, worker_config, erp.name) as server,
        TrytonRPC(server.url, server.database) as client,
    ):
        admin = client.login("admin", ADMIN_PASSWORD)
        (sale_id,) = client.call(admin, "model.sale.sale.search", [[("description", "=", "seed:sale:2")], {}])
        client.call(admin, "model.sale.sale.confirm", [[sale_id], {}])
    pending = erp.count("SELECT count(*) FROM ir_queue WHERE dequeued_at IS NULL AND finished_at IS NULL")
    assert (before, pending) == (0, 1)
    families = run(pack_checks(erp.database)["queue"])
    assert value(families, "erp_queue_tasks_pending", pack="tryton") == 1
    age = value(families, "erp_queue_oldest_pending_age_seconds", pack="tryton")
    assert isinstance(age, float) and 0 <= age < 60


def test_queue_depth_and_oldest_age_count_only_waiting_tasks(erp: Erp) -> None:
    now = now_utc()

    def task(enqueued: datetime.timedelta, **columns: datetime.timedelta) -> None:
        values = {"enqueued_at": now - enqueued, **{key: now - delta for key, delta in columns.items()}}
        names = ", ".join(values)
        stamps = ", ".join(f"'{utc_text(moment)}'" for moment in values.values())
        erp.execute(
            f"INSERT INTO ir_queue (name, data, create_date, create_uid, {names}) "
            f"VALUES ('default', '{{}}', '{utc_text(now)}', 0, {stamps})"
        )

    minute = datetime.timedelta(minutes=1)
    task(10 * minute)  # waiting for 10 minutes: the oldest
    task(3 * minute)
    task(30 * minute, scheduled_at=-60 * minute)  # scheduled an hour ahead: waiting, but not due yet
    task(20 * minute, scheduled_at=4 * minute)  # due 4 minutes ago (enqueued 20)
    task(50 * minute, dequeued_at=49 * minute)  # taken by a worker: running, not waiting
    task(60 * minute, dequeued_at=59 * minute, finished_at=58 * minute)  # done
    waiting = erp.rows(
        "SELECT enqueued_at, coalesce(scheduled_at, enqueued_at) FROM ir_queue "
        "WHERE dequeued_at IS NULL AND finished_at IS NULL"
    )
    started = now_utc()
    families = run(pack_checks(erp.database)["queue"])
    ended = now_utc()
    assert value(families, "erp_queue_tasks_pending", pack="tryton") == len(waiting) == 4
    # due since enqueued_at or scheduled_at, whichever is later; a task due in the future is 0 s overdue
    oldest = max(max(0.0, min(seconds_since(e, started), seconds_since(s, started))) for e, s in waiting)
    age = value(families, "erp_queue_oldest_pending_age_seconds")
    assert isinstance(age, float)
    assert oldest == pytest.approx(600, abs=1)
    assert oldest - 0.01 <= age <= oldest + (ended - started).total_seconds() + 0.01


def test_an_empty_queue_reports_zero_depth_and_zero_age(erp: Erp) -> None:
    families = run(pack_checks(erp.database)["queue"])
    assert erp.count("SELECT count(*) FROM ir_queue WHERE dequeued_at IS NULL AND finished_at IS NULL") == 0
    assert value(families, "erp_queue_tasks_pending") == 0
    assert value(families, "erp_queue_oldest_pending_age_seconds") == 0


# -- scheduled jobs ---------------------------------------------------------------------------------


def test_overdue_jobs_are_active_jobs_due_longer_than_the_margin(erp: Erp) -> None:
    now = now_utc().replace(microsecond=0)  # next_call is a DateTime: whole seconds on PostgreSQL
    ids = [int(row[0]) for row in erp.rows("SELECT id FROM ir_cron ORDER BY id")]
    assert len(ids) == 11
    future = utc_text(now + datetime.timedelta(hours=1))
    erp.execute(f"UPDATE ir_cron SET next_call = '{future}'")
    for cron_id, late in zip(ids[:3], (1000, 2000, 700), strict=True):  # three overdue jobs
        erp.execute(f"UPDATE ir_cron SET next_call = '{utc_text(now - datetime.timedelta(seconds=late))}' "
                    f"WHERE id = {cron_id}")
    due_within_margin = utc_text(now - datetime.timedelta(seconds=100))
    erp.execute(f"UPDATE ir_cron SET next_call = '{due_within_margin}' WHERE id = {ids[3]}")
    inactive = utc_text(now - datetime.timedelta(days=2))
    erp.execute(f"UPDATE ir_cron SET next_call = '{inactive}', active = FALSE WHERE id = {ids[4]}")
    started = now_utc()
    families = run(pack_checks(erp.database)["scheduled_jobs"])
    ended = now_utc()
    delays = [
        seconds_since(next_call, started)
        for (next_call,) in erp.rows(f"SELECT next_call FROM ir_cron WHERE active = {_true(erp)}")
    ]
    assert value(families, "erp_scheduled_jobs_overdue", pack="tryton") == sum(d > 300 for d in delays) == 3
    delay = value(families, "erp_scheduled_job_max_delay_seconds", pack="tryton")
    assert isinstance(delay, float)
    assert 2000 <= delay <= 2000 + (ended - now).total_seconds() + 0.01
    with_margin = run(pack_checks(erp.database, overdue_margin_seconds=60)["scheduled_jobs"])
    assert value(with_margin, "erp_scheduled_jobs_overdue") == 4


def test_jobs_that_never_ran_are_due_since_they_were_created(erp: Erp) -> None:
    # a fresh database: trytond-cron has never run, every next_call is empty
    assert erp.count("SELECT count(*) FROM ir_cron WHERE next_call IS NULL") == 11
    an_hour_ago = utc_text(now_utc() - datetime.timedelta(hours=1))
    erp.execute(f"UPDATE ir_cron SET create_date = '{an_hour_ago}', write_date = NULL")
    families = run(pack_checks(erp.database)["scheduled_jobs"])
    assert value(families, "erp_scheduled_jobs_overdue") == 11
    delay = value(families, "erp_scheduled_job_max_delay_seconds")
    assert isinstance(delay, float) and 3600 <= delay < 3660


def test_a_cron_run_leaves_no_job_overdue(erp: Erp, tryton_install: TrytonInstall) -> None:
    tryton.run_cron_once(tryton_install, erp.config, erp.name)
    families = run(pack_checks(erp.database)["scheduled_jobs"])
    assert erp.count("SELECT count(*) FROM ir_cron WHERE next_call IS NULL") == 0
    assert value(families, "erp_scheduled_jobs_overdue") == 0
    assert value(families, "erp_scheduled_job_max_delay_seconds") == 0


def _true(erp: Erp) -> str:
    return "1" if erp.backend == "sqlite" else "true"


# -- task errors ------------------------------------------------------------------------------------


def test_task_errors_count_open_and_processing_not_solved(erp: Erp) -> None:
    now = utc_text(now_utc())
    cron_id = erp.rows("SELECT min(id) FROM ir_cron")[0][0]
    for state, origin in (
        ("open", f"ir.cron,{cron_id}"),
        ("open", "ir.queue,1"),
        ("processing", "ir.queue,2"),
        ("solved", f"ir.cron,{cron_id}"),
    ):
        erp.execute(
            "INSERT INTO ir_error (origin, message, description, state, create_date, create_uid) "
            f"VALUES ('{origin}', 'Boom', 'Traceback', '{state}', '{now}', 0)"
        )
    families = run(pack_checks(erp.database)["task_errors"])
    assert erp.count("SELECT count(*) FROM ir_error WHERE state IN ('open', 'processing')") == 3
    assert value(families, "erp_task_errors", pack="tryton") == 3


# -- version and modules ----------------------------------------------------------------------------


def test_version_and_modules_match_the_installed_trytond(erp: Erp, tryton_install: TrytonInstall) -> None:
    release = ".".join(tryton_install.version().split(".")[:2])  # 8.0.12 -> 8.0: what the database keeps
    version = run(pack_checks(erp.database)["version"])
    assert release == "8.0"
    assert series(version, "erp_info") == [{"erp": "tryton", "version": release, "pack": "tryton"}]
    assert value(version, "erp_info") == 1
    activated = sorted(row[0] for row in erp.rows("SELECT name FROM ir_module WHERE state = 'activated'"))
    assert value(version, "erp_modules_installed", pack="tryton") == len(activated) == 15
    modules = run(pack_checks(erp.database)["modules"])
    assert series(modules, "erp_module_info") == [
        {"module": name, "version": release, "pack": "tryton"} for name in activated
    ]
    assert {"ir", "res", "sale", "purchase", "production", "stock"} <= set(activated)


# -- scheduler runs from ir_cron_log (job_log) ------------------------------------------------------


def job_counts(erp: Erp) -> dict[str, int]:
    """Finished runs per job, counted independently: ir_cron_log rows by method."""
    rows = erp.rows(
        "SELECT c.method, count(*) FROM ir_cron_log l JOIN ir_cron c ON c.id = l.cron GROUP BY c.method"
    )
    return {method: int(count) for method, count in rows}


def observed(families: list[MetricFamily]) -> dict[str, float]:
    counts: dict[str, float] = {}
    for family in families:
        if family.name == "erp_transaction_duration_seconds":
            for sample in family.samples:
                assert isinstance(sample.value, HistogramValue)
                counts[sample.labels["transaction"]] = sample.value.count
    return counts


def test_cron_run_once_is_observed_once_per_log_row_across_rounds(erp: Erp, tryton_install: TrytonInstall) -> None:
    check = pack_checks(erp.database)["job_runs"]
    primed = run(check)  # nothing has run yet
    assert observed(primed) == {}
    tryton.run_cron_once(tryton_install, erp.config, erp.name)
    expected = job_counts(erp)
    assert len(expected) == 11 and set(expected.values()) == {1}
    for _ in range(3):  # more rounds never count a run again
        families = run(check)
        assert observed(families) == expected
    for method in expected:
        labels = {"transaction": method, "source": "job_log", "pack": "tryton"}
        assert value(families, "erp_transaction_failures_total", **labels, reason="job_failed") == 0
        stamp = value(families, "erp_transaction_last_success_timestamp_seconds", **labels)
        assert isinstance(stamp, float) and abs(stamp - now_utc().timestamp()) < 300
    histogram = value(families, "erp_transaction_duration_seconds", transaction=method)
    assert isinstance(histogram, HistogramValue)
    assert [bound for bound, _ in histogram.buckets] == [
        0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600
    ]


def _insert_log(erp: Erp, cron_id: int, started: str, ended: str) -> None:
    erp.execute(
        "INSERT INTO ir_cron_log (cron, started, ended, create_date, create_uid) "
        f"VALUES ({cron_id}, '{started}', '{ended}', '{ended}', 0)"
    )


def _second(moment: datetime.datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat(sep=" ")


def test_jobs_finished_in_the_same_second_are_each_counted_once(erp: Erp) -> None:
    check = pack_checks(erp.database)["job_runs"]
    run(check)  # primes on an empty log
    cron_id, method = erp.rows("SELECT id, method FROM ir_cron ORDER BY id")[0]
    ended = now_utc().replace(microsecond=0)
    tie = _second(ended)
    _insert_log(erp, int(cron_id), _second(ended - datetime.timedelta(seconds=3)), tie)
    _insert_log(erp, int(cron_id), _second(ended - datetime.timedelta(seconds=1)), tie)
    first = run(check)
    assert observed(first) == {method: 2}
    # two more runs finish in the very same second, committed after the last round read it
    _insert_log(erp, int(cron_id), tie, tie)
    _insert_log(erp, int(cron_id), _second(ended - datetime.timedelta(seconds=40)), tie)
    second = run(check)
    assert observed(second) == {method: 4} == job_counts(erp)
    third = run(check)
    assert observed(third) == {method: 4}
    histogram = value(third, "erp_transaction_duration_seconds", transaction=method)
    assert isinstance(histogram, HistogramValue)
    assert histogram.sum == 3 + 1 + 0 + 40  # ended - started of each row, in seconds
    assert dict(histogram.buckets)[1] == 2  # 0 s and 1 s


def test_a_restart_does_not_count_history_again(erp: Erp, tryton_install: TrytonInstall) -> None:
    tryton.run_cron_once(tryton_install, erp.config, erp.name)
    assert sum(job_counts(erp).values()) == 11
    restarted = pack_checks(erp.database)["job_runs"]  # a new check: what an exporter (re)start builds
    assert isinstance(restarted, JobLogCheck)
    families = run(restarted)
    assert observed(families) == {}
    assert len(series(families, "erp_transaction_failures_total")) == 11
    assert {labels["reason"] for labels in series(families, "erp_transaction_failures_total")} == {"job_failed"}
    assert all(value(families, "erp_transaction_failures_total", **labels) == 0
               for labels in series(families, "erp_transaction_failures_total"))
    # the newest finished run is the watermark; a later run counts, the history still does not
    cron_id, method = erp.rows("SELECT id, method FROM ir_cron ORDER BY id")[0]
    later = now_utc() + datetime.timedelta(seconds=2)
    _insert_log(erp, int(cron_id), _second(later - datetime.timedelta(seconds=2)), _second(later))
    after = run(restarted)
    assert observed(after) == {method: 1}


def test_a_failed_job_counts_as_a_job_failure(erp: Erp) -> None:
    check = pack_checks(erp.database)["job_runs"]
    run(check)
    cron_id, method = erp.rows("SELECT id, method FROM ir_cron ORDER BY id")[1]
    now = utc_text(now_utc())
    erp.execute(
        "INSERT INTO ir_error (origin, message, description, state, create_date, create_uid) "
        f"VALUES ('ir.cron,{cron_id}', 'Boom', 'Traceback', 'open', '{now}', 0)"
    )
    erp.execute(
        "INSERT INTO ir_error (origin, message, description, state, create_date, create_uid) "
        f"VALUES ('ir.queue,7', 'Boom', 'Traceback', 'open', '{now}', 0)"
    )
    for _ in range(2):
        families = run(check)
        labels = {"transaction": method, "source": "job_log", "pack": "tryton"}
        assert value(families, "erp_transaction_failures_total", **labels, reason="job_failed") == 1
        assert observed(families) == {}  # a failed run has no duration
        assert value(families, "erp_transaction_last_success_timestamp_seconds", **labels) is None


# -- the whole exporter -----------------------------------------------------------------------------


ACTIVITY_TABLES = ("sale_sale", "purchase_purchase", "account_invoice", "account_move", "stock_move", "production")


def days_ago(erp: Erp, days: int) -> str:
    """SQL for a naive UTC timestamp `days` ago, as Tryton stores it on this backend."""
    if erp.backend == "sqlite":
        return f"datetime('now', '-{days} days')"
    return f"(now() AT TIME ZONE 'UTC') - interval '{days} days'"


def test_adoption_counts_accounts_and_the_users_who_worked_within_a_day_and_30_days(erp: Erp) -> None:
    # Everything the seed wrote is 60 days old and nobody holds a session ...
    erp.execute("DELETE FROM ir_session;")
    for table in ACTIVITY_TABLES:
        erp.execute(f"UPDATE {table} SET create_date = {days_ago(erp, 60)}, write_date = NULL;")
    ids = {login: int(i) for login, i in erp.rows("SELECT login, id FROM res_user")}
    # ... then alice creates a sale today, bob changes an invoice 10 days ago, carol's session is active now.
    erp.execute(f"UPDATE sale_sale SET create_uid = {ids['alice']}, create_date = {days_ago(erp, 0)} "
                "WHERE id = (SELECT min(id) FROM sale_sale);")
    erp.execute(f"UPDATE account_invoice SET write_uid = {ids['bob']}, write_date = {days_ago(erp, 10)} "
                "WHERE id = (SELECT min(id) FROM account_invoice);")
    erp.execute("INSERT INTO ir_session (create_uid, create_date, key) "
                f"VALUES ({ids['carol']}, {days_ago(erp, 0)}, 'adoption-test');")
    day, month = {ids["alice"], ids["carol"]}, {ids["alice"], ids["bob"], ids["carol"]}

    families = run(pack_checks(erp.database)["adoption"])

    accounts = {int(i) for (i,) in erp.rows("SELECT id FROM res_user WHERE active = TRUE AND id > 0")}
    assert value(families, "erp_user_accounts", user_group="(all)") == len(accounts)
    assert value(families, "erp_users_active_1d", user_group="(all)") == 2
    assert value(families, "erp_users_active_30d", user_group="(all)") == 3
    members: dict[str, set[int]] = {}
    for group, user in erp.rows(
        'SELECT g.name, ug."user" FROM "res_user-res_group" ug JOIN res_group g ON g.id = ug."group"'
    ):
        if int(user) in accounts:
            members.setdefault(group, set()).add(int(user))
    assert members, "the seeded users belong to groups"
    for group, users in members.items():
        assert value(families, "erp_user_accounts", user_group=group) == len(users)
        assert value(families, "erp_users_active_1d", user_group=group) == len(users & day)
        assert value(families, "erp_users_active_30d", user_group=group) == len(users & month)


def test_the_exporter_runs_every_query_of_the_pack_as_its_own_check(tmp_path: Path, erp: Erp) -> None:
    if erp.backend == "sqlite":
        target = f"""
    driver: SQLite3
    connection:
      database: {erp.database.spec.attributes['database']}"""
    else:
        attributes = erp.database.spec.attributes
        target = f"""
    driver: PostgreSQL Unicode
    connection:
      server: {attributes['server']}
      port: {attributes['port']}
      database: {attributes['database']}
    username: exporter
    password: exporterpw"""
    config = f"""
host:
  enabled: false
targets:
  - name: erp{target}
    labels:
      environment: test
    checks:
      - kind: pack
        pack: tryton
        params:
          overdue_margin_seconds: 60
"""
    with running_app(tmp_path, config) as app:
        runtime = app.app.runtime
        assert runtime is not None
        intervals = {key.check: meta.interval for key, meta in runtime.metas.items() if meta.kind == "pack"}
        assert intervals == {
            "tryton/sessions": 30,
            "tryton/login_failures": 60,
            "tryton/queue": 30,
            "tryton/scheduled_jobs": 60,
            "tryton/task_errors": 60,
            "tryton/version": 3600,
            "tryton/modules": 3600,
            "tryton/adoption": 3600,
            "tryton/documents_created": 300,
            "tryton/documents_progressed": 300,
            "tryton/posting_backlog": 300,
            "tryton/job_runs": 60,
        }
        for check in intervals:
            wait_until(lambda check=check: app.state("erp", check).runs_total > 0, 30, f"{check} did not run")
            assert app.state("erp", check).success, (check, app.state("erp", check).error_message)
        labels = {"target": "erp", "environment": "test", "pack": "tryton"}
        assert app.value("erp_users_logged_in", **labels) == 0
        assert app.value("erp_info", erp="tryton", version="8.0", **labels) == 1
        assert app.value("erp_modules_installed", **labels) == 15
        assert app.value("erp_check_success", target="erp", check="tryton/queue") == 1


def test_statements_per_minute_at_the_default_intervals() -> None:
    entry = PackCheckConfig.model_validate({"kind": "pack", "pack": "tryton"})
    database = _database("SQLite3", {"database": "/nonexistent"}, None, None)
    loaded = LoadedConfig(config=ExporterConfig(), source="test")
    built = build_pack_checks(entry, database, loaded)
    per_minute = sum(60 / check.interval for check in built if check.interval is not None)
    assert len(built) == 12
    assert round(per_minute, 2) == 8.65


# -- business documents ------------------------------------------------------------------------------

#: (document, table, the SQL condition on the table's rows `x`) of every document type the pack counts
DOCUMENT_TABLES = (
    ("sale", "sale_sale", "TRUE"),
    ("purchase", "purchase_purchase", "TRUE"),
    ("customer_invoice", "account_invoice", "x.type = 'out'"),
    ("supplier_invoice", "account_invoice", "x.type = 'in'"),
    ("account_move", "account_move", "TRUE"),
    ("stock_move", "stock_move", "TRUE"),
    ("production", "production", "TRUE"),
)


def document_snapshot(erp: Erp) -> dict[tuple[str, str], int]:
    """The test's own count of every (document, event): rows created, and rows in the states past the event."""
    counts: dict[tuple[str, str], int] = {}
    for document, table, where in DOCUMENT_TABLES:
        counts[(document, "created")] = erp.count(f"SELECT count(*) FROM {table} x WHERE {where}")
    for document, table in (("sale", "sale_sale"), ("purchase", "purchase_purchase")):
        counts[(document, "confirmed")] = erp.count(
            f"SELECT count(*) FROM {table} WHERE state IN ('confirmed', 'processing', 'done')"
        )
    for document, kind in (("customer_invoice", "out"), ("supplier_invoice", "in")):
        counts[(document, "posted")] = erp.count(
            "SELECT count(*) FROM account_invoice i, account_move m "
            f"WHERE m.id = i.move AND m.state = 'posted' AND i.type = '{kind}'"
        )
    counts[("account_move", "posted")] = erp.count("SELECT count(*) FROM account_move WHERE state = 'posted'")
    counts[("stock_move", "done")] = erp.count("SELECT count(*) FROM stock_move WHERE state = 'done'")
    counts[("production", "done")] = erp.count("SELECT count(*) FROM production WHERE state = 'done'")
    return counts


def document_counts(*runs: list[MetricFamily]) -> dict[tuple[str, str], float]:
    """erp_business_documents_total by (document, event), from the families of several checks."""
    counted: dict[tuple[str, str], float] = {}
    for families in runs:
        for family in families:
            if family.name == "erp_business_documents_total":
                for sample in family.samples:
                    assert isinstance(sample.value, float)
                    counted[(sample.labels["document"], sample.labels["event"])] = sample.value
    return counted


def _call(client: TrytonRPC, session: object, model: str, method: str, *params: object) -> object:
    return client.call(session, f"model.{model}.{method}", [*params, {}])  # type: ignore[arg-type]


def work_in_tryton(client: TrytonRPC) -> None:
    """Real work through trytond: a sale copied, a quotation confirmed (Tryton then ships and invoices it),
    its invoice posted, and a purchase copied and confirmed."""
    admin = client.login("admin", ADMIN_PASSWORD)
    (first,) = _call(client, admin, "sale.sale", "search", [("description", "=", "seed:sale:1")])
    _call(client, admin, "sale.sale", "copy", [first], {})
    (quoted,) = _call(client, admin, "sale.sale", "search", [("description", "=", "seed:sale:2")])
    _call(client, admin, "sale.sale", "confirm", [quoted])
    invoices = _call(client, admin, "account.invoice", "search", [("state", "=", "draft"), ("type", "=", "out")])
    assert invoices, "confirming the quotation made its invoice"
    _call(client, admin, "account.invoice", "post", invoices)
    (draft,) = _call(client, admin, "purchase.purchase", "search", [("description", "=", "seed:purchase:1")])
    (copy,) = _call(client, admin, "purchase.purchase", "copy", [draft], {})
    _call(client, admin, "purchase.purchase", "quote", [copy])
    _call(client, admin, "purchase.purchase", "confirm", [copy])


def test_business_documents_are_counted_once_each_as_tryton_creates_confirms_and_posts_them(
    erp: Erp, erp_rpc: TrytonRPC
) -> None:
    checks = pack_checks(erp.database)
    created, progressed = checks["documents_created"], checks["documents_progressed"]
    primed = document_counts(run(created), run(progressed))
    assert set(primed) == set(document_snapshot(erp)), "every declared pair is published from the start"
    assert set(primed.values()) == {0.0}, "history is not counted"
    before = document_snapshot(erp)

    work_in_tryton(erp_rpc)

    after = document_snapshot(erp)
    expected = {pair: float(after[pair] - before[pair]) for pair in after}
    grown = {pair for pair, amount in expected.items() if amount}
    assert {("sale", "created"), ("sale", "confirmed"), ("customer_invoice", "posted"), ("stock_move", "created"),
            ("purchase", "confirmed"), ("account_move", "posted")} <= grown
    assert document_counts(run(created), run(progressed)) == expected
    assert document_counts(run(created), run(progressed)) == expected, "a second round counts nothing again"


def test_a_restarted_exporter_does_not_count_business_documents_again(erp: Erp, erp_rpc: TrytonRPC) -> None:
    first = pack_checks(erp.database)
    run(first["documents_created"])
    run(first["documents_progressed"])
    work_in_tryton(erp_rpc)
    assert sum(document_counts(run(first["documents_created"]), run(first["documents_progressed"])).values()) > 0
    restarted = pack_checks(erp.database)  # what an exporter (re)start builds
    counted = document_counts(run(restarted["documents_created"]), run(restarted["documents_progressed"]))
    assert set(counted.values()) == {0.0}
    assert document_counts(run(restarted["documents_created"]), run(restarted["documents_progressed"])) == counted


def test_documents_created_in_the_same_second_in_different_rounds_are_each_counted_once(erp: Erp) -> None:
    check = pack_checks(erp.database)["documents_created"]
    run(check)
    moment = utc_text(now_utc().replace(microsecond=0))
    columns = "company, currency, party, state, invoice_method, shipment_method, invoice_state, shipment_state"
    template = f"SELECT 'copy', {columns}, '{{at}}' FROM sale_sale WHERE id = (SELECT min(id) FROM sale_sale)"
    insert = f"INSERT INTO sale_sale (description, {columns}, create_date) "
    erp.execute(insert + template.format(at=moment) + ";")
    assert document_counts(run(check))[("sale", "created")] == 1
    erp.execute(insert + template.format(at=moment) + ";")  # committed after the round that read the first
    erp.execute(insert + template.format(at=moment) + ";")
    assert document_counts(run(check))[("sale", "created")] == 3
    assert document_counts(run(check))[("sale", "created")] == 3


def test_the_posting_backlog_counts_draft_moves_and_unposted_invoices(erp: Erp, erp_rpc: TrytonRPC) -> None:
    work_in_tryton(erp_rpc)  # leaves the purchase's draft supplier invoice, if its method makes one, and moves
    families = run(pack_checks(erp.database)["posting_backlog"])
    assert value(families, "erp_documents_unposted", document="account_move") == erp.count(
        "SELECT count(*) FROM account_move WHERE state = 'draft'"
    )
    for document, kind in (("customer_invoice", "out"), ("supplier_invoice", "in")):
        assert value(families, "erp_documents_unposted", document=document) == erp.count(
            f"SELECT count(*) FROM account_invoice WHERE type = '{kind}' AND state IN ('draft', 'validated')"
        )
