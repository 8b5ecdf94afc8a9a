"""The real-Tryton test infrastructure works on the real thing (see tryton.py and the fixtures in conftest).

Tests on the session server count relative to a baseline and clean up what they create, because the server
and its SQLite database are shared by the whole session. Tests that need a pristine database use
``tryton_sqlite_scratch``.
"""

from __future__ import annotations

import socket
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pyodbc
import pytest
import tryton
from servers import PostgresServer
from statement_audit import deliberate
from tryton import (
    MONITORING_TABLES,
    SEED_PASSWORD,
    Session,
    TrytonHTTPError,
    TrytonInstall,
    TrytonRPC,
    TrytonServer,
    count_rows,
    sqlite_execute,
    sqlite_rows,
)

SEEDED_LOGINS = ["alice", "bob", "carol", "dave", "erin"]


def _tables(database_file: Path) -> set[str]:
    rows = sqlite_rows(database_file, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows}


def _row_counts(database_file: Path) -> dict[str, int]:
    return {table: count_rows(database_file, table) for table in sorted(_tables(database_file))}


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pid_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :][:1] in ("Z", "X")


# -- the installation -------------------------------------------------------------------------------


def test_tryton_venv_is_tryton_8_0_lts(tryton_install: TrytonInstall) -> None:
    assert tryton_install.version().startswith("8.0.")


def test_missing_tryton_venv_fails_with_the_install_hint(tmp_path: Path) -> None:
    with pytest.raises(tryton.TrytonError, match="run make test/ make demo to install the Tryton venv"):
        TrytonInstall(tmp_path / "no-venv")


# -- the SQLite database ----------------------------------------------------------------------------


def test_sqlite_database_has_the_six_monitoring_tables(tryton_sqlite_scratch: Path) -> None:
    assert set(MONITORING_TABLES) <= _tables(tryton_sqlite_scratch)
    counts = {table: count_rows(tryton_sqlite_scratch, table) for table in MONITORING_TABLES}
    # a fresh database: nobody logged in, no cron run yet; confirming the seeded sale and purchase left
    # two ir_queue rows, already processed (no worker: they run at commit and stay until ir.queue|clean)
    assert counts == {
        "ir_session": 0,
        "ir_queue": 2,
        "ir_cron": 11,
        "ir_cron_log": 0,
        "ir_error": 0,
        "res_user_login_attempt": 0,
    }
    unfinished = sqlite_rows(tryton_sqlite_scratch, "SELECT count(*) FROM ir_queue WHERE finished_at IS NULL")
    assert unfinished == [(0,)]


def test_sqlite_database_has_the_seeded_company_and_users(tryton_sqlite_db: Path) -> None:
    users = sqlite_rows(tryton_sqlite_db, "SELECT login, active, company FROM res_user ORDER BY id")
    assert [login for login, _, _ in users] == ["root", "admin", *SEEDED_LOGINS]
    companies = sqlite_rows(
        tryton_sqlite_db,
        "SELECT c.id, p.name, cur.code FROM company_company c JOIN party_party p ON p.id = c.party"
        " JOIN currency_currency cur ON cur.id = c.currency",
    )
    assert companies == [(1, "Acme Demo Ltd", "EUR")]
    assert all(active == 1 and company == 1 for login, active, company in users if login != "root")


def test_sqlite_database_has_parties_with_incomplete_master_data(tryton_sqlite_db: Path) -> None:
    rows = sqlite_rows(
        tryton_sqlite_db,
        """
        SELECT p.name,
               (SELECT count(*) FROM party_address a WHERE a.party = p.id),
               (SELECT count(*) FROM party_identifier i WHERE i.party = p.id),
               (SELECT count(*) FROM party_contact_mechanism m WHERE m.party = p.id AND m.type = 'email')
        FROM party_party p WHERE p.name <> 'Acme Demo Ltd' ORDER BY p.name
        """,
    )
    parties = {name: (addresses, identifiers, emails) for name, addresses, identifiers, emails in rows}
    assert parties == {
        "Antwerp Steelworks NV": (1, 1, 1),
        "Brussels Bikes NV": (1, 1, 1),
        "Corner Shop": (0, 1, 1),
        "Ghent Garden Supplies BV": (1, 1, 1),
        "Nameless Trader": (0, 0, 0),
        "Paper & Co": (1, 1, 0),
        "Walk-in Customer": (1, 0, 0),
    }


def test_sqlite_database_has_goods_with_cost_prices_sales_and_purchases(tryton_sqlite_db: Path) -> None:
    products = sqlite_rows(
        tryton_sqlite_db,
        """
        SELECT t.name, t.type, (SELECT c.cost_price FROM product_cost_price c WHERE c.product = pp.id)
        FROM product_template t JOIN product_product pp ON pp.template = t.id ORDER BY t.name
        """,
    )
    assert [(name, kind) for name, kind, _ in products] == [
        ("Bike Frame", "goods"),
        ("Chain", "goods"),
        ("Saddle", "goods"),
        ("Wheel", "goods"),
    ]
    # Tryton stores a cost price for every product: 0 when none was given (incomplete master data);
    # on SQLite, Numeric columns hold the decimal's text as a BLOB (b"120.00")
    assert {name: Decimal(cost.decode()) for name, _, cost in products} == {
        "Bike Frame": Decimal("120"),
        "Chain": Decimal("5.5"),
        "Saddle": Decimal(0),
        "Wheel": Decimal("25"),
    }
    sales = sqlite_rows(tryton_sqlite_db, "SELECT description, state FROM sale_sale ORDER BY id")
    assert sales == [("seed:sale:1", "draft"), ("seed:sale:2", "quotation"), ("seed:sale:3", "processing")]
    purchases = sqlite_rows(tryton_sqlite_db, "SELECT description, state FROM purchase_purchase ORDER BY id")
    assert purchases == [("seed:purchase:1", "draft"), ("seed:purchase:2", "processing")]


def test_rebuilt_sqlite_database_has_the_same_tables_and_row_counts(
    tryton_install: TrytonInstall, tryton_sqlite_scratch: Path, tmp_path: Path
) -> None:
    # a cache hit on a warm cache (the session build stored it), a fresh build with ERP_TRYTON_CACHE=off
    rebuilt = tryton.create_sqlite_database(
        tryton_install, tmp_path / "again", tryton_sqlite_scratch.stem, seed=tryton.FIXTURE_SEED
    )
    assert _row_counts(rebuilt) == _row_counts(tryton_sqlite_scratch)


# -- the PostgreSQL database ------------------------------------------------------------------------


def test_postgres_database_is_readable_by_the_exporter_role(
    postgres: PostgresServer, tryton_postgres_db: str
) -> None:
    connection_string = postgres.connection_string(database=tryton_postgres_db)
    with closing(pyodbc.connect(connection_string, autocommit=True, timeout=5)) as cnxn:
        assert tuple(cnxn.execute("SELECT current_user, current_database()").fetchone()) == (
            "exporter",
            tryton_postgres_db,
        )
        counts = {
            table: cnxn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in MONITORING_TABLES
        }
        logins = [row[0] for row in cnxn.execute("SELECT login FROM res_user ORDER BY id").fetchall()]
    assert counts["ir_session"] == 0
    assert counts["ir_cron"] == 11
    assert counts["ir_cron_log"] == 0
    assert logins == ["root", "admin", *SEEDED_LOGINS]


def test_postgres_database_refuses_writes_by_the_exporter_role(
    postgres: PostgresServer, tryton_postgres_db: str
) -> None:
    connection_string = postgres.connection_string(database=tryton_postgres_db)
    with closing(pyodbc.connect(connection_string, autocommit=True, timeout=5)) as cnxn:
        with pytest.raises(pyodbc.Error, match="permission denied for table ir_session"):
            # named to the zero-write audit: the role's grants must refuse it
            cnxn.execute(deliberate("INSERT INTO ir_session (key, create_uid, create_date) VALUES ('x', 1, now())"))
        with pytest.raises(pyodbc.Error, match="permission denied for table ir_cron"):
            cnxn.execute(deliberate("UPDATE ir_cron SET active = false"))
    assert postgres.psql("SELECT count(*) FROM ir_session", database=tryton_postgres_db) == "0\n"


def test_postgres_database_works_with_trytond_and_seeding_it_again_creates_nothing(
    tryton_install: TrytonInstall, postgres: PostgresServer, tryton_postgres_db: str, tmp_path: Path
) -> None:
    config = tryton.postgres_database_config(postgres, tmp_path)
    summary = tryton.run_seed(tryton_install, config, tryton_postgres_db, tryton.FIXTURE_SEED)
    assert summary["created"] == {}
    assert [user["login"] for user in summary["users"]] == SEEDED_LOGINS
    assert summary["sales"] == 3
    assert summary["purchases"] == 2


# -- the server and JSON-RPC ------------------------------------------------------------------------


def test_server_answers_the_version_without_a_session(tryton_rpc: TrytonRPC) -> None:
    assert tryton_rpc.server_version() == "8.0"


def test_three_logins_create_three_sessions_for_distinct_users(
    tryton_rpc: TrytonRPC, tryton_sqlite_db: Path
) -> None:
    (baseline,) = sqlite_rows(tryton_sqlite_db, "SELECT coalesce(max(id), 0) FROM ir_session")[0]
    sessions = [tryton_rpc.login(login, SEED_PASSWORD) for login in ("alice", "bob", "carol")]
    try:
        rows = sqlite_rows(
            tryton_sqlite_db,
            "SELECT create_uid, key, ip_address FROM ir_session WHERE id > ? ORDER BY id",
            (baseline,),
        )
        assert [(uid, key) for uid, key, _ in rows] == [(s.user_id, s.key) for s in sessions]
        assert len({uid for uid, _, _ in rows}) == 3
        assert {ip for _, _, ip in rows} == {"127.0.0.1"}
    finally:
        for session in sessions:
            tryton_rpc.logout(session)


def test_session_header_authenticates_calls(tryton_rpc: TrytonRPC) -> None:
    session = tryton_rpc.login("bob", SEED_PASSWORD)
    try:
        assert tryton_rpc.call(session, "model.res.user.search_count", [[("login", "=", "bob")], {}]) == 1
        assert tryton_rpc.call(session, "model.ir.cron.search_count", [[], {}]) == 11
        forged = Session(login="bob", user_id=session.user_id, key="0" * 64)
        with pytest.raises(TrytonHTTPError) as excinfo:
            tryton_rpc.call(forged, "model.res.user.get_preferences", [True, {}])
        assert excinfo.value.status_code == 401
    finally:
        tryton_rpc.logout(session)


def test_logout_deletes_the_session_row(tryton_rpc: TrytonRPC, tryton_sqlite_db: Path) -> None:
    session = tryton_rpc.login("alice", SEED_PASSWORD)
    query = "SELECT count(*) FROM ir_session WHERE key = ?"
    assert sqlite_rows(tryton_sqlite_db, query, (session.key,)) == [(1,)]
    tryton_rpc.logout(session)
    assert sqlite_rows(tryton_sqlite_db, query, (session.key,)) == [(0,)]
    with pytest.raises(TrytonHTTPError) as excinfo:
        tryton_rpc.call(session, "model.res.user.get_preferences", [True, {}])
    assert excinfo.value.status_code == 401


def test_wrong_password_gives_http_401_and_a_login_attempt_row(
    tryton_rpc: TrytonRPC, tryton_sqlite_db: Path
) -> None:
    query = "SELECT count(*), max(ip_network) FROM res_user_login_attempt WHERE login = 'dave'"
    (before, _) = sqlite_rows(tryton_sqlite_db, query)[0]
    try:
        with pytest.raises(TrytonHTTPError) as excinfo:
            tryton_rpc.login("dave", "Wrong-Passw0rd-2024")
        assert excinfo.value.status_code == 401
        assert sqlite_rows(tryton_sqlite_db, query) == [(before + 1, "127.0.0.1/32")]
    finally:  # too many attempts would rate-limit (HTTP 429) later logins of dave
        sqlite_execute(tryton_sqlite_db, "DELETE FROM res_user_login_attempt WHERE login = 'dave'")


def test_clear_sessions_logs_everyone_out(tryton_install: TrytonInstall, tryton_sqlite_scratch: Path) -> None:
    config = tryton.sqlite_config_path(tryton_sqlite_scratch)
    with (
        TrytonServer(tryton_install, config, tryton_sqlite_scratch.stem) as server,
        TrytonRPC(server.url, server.database) as client,
    ):
        session = client.login("erin", SEED_PASSWORD)
        assert tryton.clear_sessions(tryton_sqlite_scratch) == 1
        with pytest.raises(TrytonHTTPError) as excinfo:
            client.call(session, "model.res.user.get_preferences", [True, {}])
        assert excinfo.value.status_code == 401


def test_server_stop_leaves_no_process(tryton_install: TrytonInstall, tryton_sqlite_scratch: Path) -> None:
    server = TrytonServer(tryton_install, tryton.sqlite_config_path(tryton_sqlite_scratch), "tryton_test")
    server.start()
    pid = server.pid
    assert pid is not None
    server.stop()
    assert _pid_gone(pid)
    assert not server.is_running()
    assert not _port_open(server.port)
    assert "INFO" in server.log_file.read_text()


def test_cron_once_writes_cron_log_rows(tryton_install: TrytonInstall, tryton_sqlite_scratch: Path) -> None:
    config = tryton.sqlite_config_path(tryton_sqlite_scratch)
    tryton.run_cron_once(tryton_install, config, tryton_sqlite_scratch.stem)
    crons, logged = sqlite_rows(
        tryton_sqlite_scratch,
        "SELECT (SELECT count(*) FROM ir_cron WHERE active = 1),"
        " (SELECT count(DISTINCT cron) FROM ir_cron_log WHERE ended IS NOT NULL)",
    )[0]
    assert logged == crons == 11
    unscheduled = sqlite_rows(tryton_sqlite_scratch, "SELECT count(*) FROM ir_cron WHERE next_call IS NULL")
    assert unscheduled == [(0,)]


def test_create_users_adds_logins_that_can_log_in(
    tryton_install: TrytonInstall, tryton_sqlite_scratch: Path
) -> None:
    config = tryton.sqlite_config_path(tryton_sqlite_scratch)
    created = tryton.create_users(tryton_install, config, tryton_sqlite_scratch.stem, ["zoe", "alice"])
    assert set(created) == {"zoe", "alice"}
    with (
        TrytonServer(tryton_install, config, tryton_sqlite_scratch.stem) as server,
        TrytonRPC(server.url, server.database) as client,
    ):
        session = client.login("zoe", SEED_PASSWORD)
        assert session.user_id == created["zoe"]
        client.logout(session)
