"""The standard Tryton audits (exporter/packs/tryton/audits.yml) on real Tryton 8.0 databases.

Each database (a private SQLite copy, and a PostgreSQL copy of the seeded database) gets records made to
violate every audit, next to records that look alike but do not violate it (done, cancelled, too recent,
reconciled...). The exporter runs the pack through ODBC; each count must equal an independent count that
the test computes in Python from plain rows of the tables, and the number of violating records made here.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyodbc
import pytest
from servers import EXPORTER_PASSWORD, EXPORTER_USER, PostgresServer, ServerError
from tryton import TrytonInstall, grant_read_only

from exporter.app import build_runtime
from exporter.checks.audits import AuditCheck, AuditResult
from exporter.checks.builtin import default_registry
from exporter.cli import main
from exporter.config.loader import load_config
from exporter.scheduler import Scheduler, SchedulerSettings
from exporter.store import ResultStore

TODAY = dt.datetime.now(dt.UTC).date()
NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None)


def ago(days: int) -> str:
    """A DATE `days` before today (UTC), as Tryton stores it."""
    return (TODAY - dt.timedelta(days=days)).isoformat()


def ts_ago(days: int) -> str:
    """A naive UTC TIMESTAMP `days` before now, as Tryton stores create_date."""
    return (NOW - dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True)
class Sub:
    """SQL put into the statement as it is (a subselect that finds an id by a natural key)."""

    sql: str


def product(name: str) -> Sub:
    return Sub(f"(SELECT pp.id FROM product_product pp JOIN product_template t ON t.id = pp.template "
               f"WHERE t.name = '{name}')")


def location(code: str) -> Sub:
    return Sub(f"(SELECT id FROM stock_location WHERE code = '{code}')")


def party(name: str) -> Sub:
    return Sub(f"(SELECT id FROM party_party WHERE name = '{name}')")


def move(number: str) -> Sub:
    return Sub(f"(SELECT id FROM account_move WHERE number = '{number}')")


COMPANY = Sub("(SELECT MIN(id) FROM company_company)")
CURRENCY = Sub("(SELECT MIN(currency) FROM company_company)")
UNIT = Sub("(SELECT id FROM product_uom WHERE name = 'Unit')")
RECEIVABLE = Sub(
    "(SELECT MIN(a.id) FROM account_account a JOIN account_account_type t ON t.id = a.type WHERE t.receivable = TRUE)"
)
REVENUE = Sub("(SELECT id FROM account_account WHERE code = '4.1.1')")
JOURNAL = Sub("(SELECT id FROM account_journal WHERE code = 'REV')")
PERIOD = Sub("(SELECT MIN(id) FROM account_period)")


def production(number: str | None, state: str, planned: str | None) -> tuple[str, dict[str, Any]]:
    return "production", {
        "number": number, "state": state, "planned_date": planned, "product": product("Bike Frame"),
        "quantity": 5.0, "unit": UNIT, "company": COMPANY, "warehouse": location("WH"),
        "location": location("PROD"), "type": "production",
    }


def stock_move(
    name: str, source: str, dest: str, qty: float, state: str, effective: str | None = None,
    planned: str | None = None,
) -> tuple[str, dict[str, Any]]:
    return "stock_move", {
        "product": product(name), "from_location": location(source), "to_location": location(dest),
        "quantity": qty, "internal_quantity": qty, "unit": UNIT, "company": COMPANY, "currency": CURRENCY,
        "state": state, "effective_date": effective, "planned_date": planned,
    }


def sale(customer: str, state: str, number: str | None = None, created: str | None = None, **more: Any
         ) -> tuple[str, dict[str, Any]]:
    return "sale_sale", {
        "party": party(customer), "state": state, "number": number, "create_date": created or ts_ago(0),
        "company": COMPANY, "currency": CURRENCY, "invoice_method": "order", "invoice_state": "none",
        "shipment_method": "order", "shipment_state": more.pop("shipment_state", "none"), **more,
    }


def purchase(supplier: str, state: str, created: str, number: str | None = None, **more: Any
             ) -> tuple[str, dict[str, Any]]:
    return "purchase_purchase", {
        "party": party(supplier), "state": state, "number": number, "create_date": created,
        "company": COMPANY, "currency": CURRENCY, "invoice_method": "order", "invoice_state": "none",
        "shipment_state": "none", **more,
    }


def employee(name: str) -> Sub:
    """The employee whose party is `name` (the compliance audits name who quoted, confirmed, posted)."""
    return Sub(f"(SELECT MIN(e.id) FROM company_employee e JOIN party_party p ON p.id = e.party "
               f"WHERE p.name = '{name}')")


ANNA, BEN = employee("Paper & Co"), employee("Antwerp Steelworks NV")  # two employees the test makes
ADMIN = Sub("(SELECT id FROM res_user WHERE login = 'admin')")
ADMIN_DOCUMENTS = ("sale_sale", "purchase_purchase", "account_invoice", "account_move", "production")
LOST_FOUND = Sub("(SELECT MIN(id) FROM stock_location WHERE type = 'lost_found')")


def lost_found_move(to_lost: bool, state: str, effective: str, origin: str | None = None
                    ) -> tuple[str, dict[str, Any]]:
    table, values = stock_move("Wheel", "STO", "STO", 1, state, effective=effective)
    values["from_location" if to_lost else "to_location"] = LOST_FOUND
    return table, {**values, "origin": origin}


def invoice_copy(kind: str, number: str, state: str, validated: Sub | None, posted: Sub | None, amount: int) -> str:
    """A copy of the seeded invoice of this type (no lines, so no purchase behind it), with who did what."""
    who = lambda employee_sub: employee_sub.sql if employee_sub else "NULL"  # noqa: E731
    return (
        "INSERT INTO account_invoice (account, company, currency, invoice_address, journal, party, payment_term, "
        "invoice_date, type, state, number, validated_by, posted_by, untaxed_amount_cache) "
        "SELECT account, company, currency, invoice_address, journal, party, payment_term, invoice_date, type, "
        f"'{state}', '{number}', {who(validated)}, {who(posted)}, {amount} "
        f"FROM account_invoice WHERE type = '{kind}' AND number IS NULL ORDER BY id LIMIT 1"
    )


def account_move(number: str, state: str) -> tuple[str, dict[str, Any]]:
    return "account_move", {
        "number": number, "state": state, "date": ago(60), "company": COMPANY, "journal": JOURNAL, "period": PERIOD,
    }


def move_line(number: str, account: Sub, debit: str, credit: str, maturity: str | None = None,
              customer: str | None = None, reconciled: bool = False) -> tuple[str, dict[str, Any]]:
    return "account_move_line", {
        "move": move(number), "account": account, "debit": Decimal(debit), "credit": Decimal(credit),
        "maturity_date": maturity, "party": party(customer) if customer else None, "state": "valid",
        "reconciliation": Sub("(SELECT MIN(id) FROM account_move_reconciliation)") if reconciled else None,
    }


def invoice_pair(number: str, state: str, customer: str, amount: str, maturity: str, reconciled: bool = False
                 ) -> list[tuple[str, dict[str, Any]]]:
    """A customer receivable: the receivable line and its revenue counterpart."""
    return [
        account_move(number, state),
        move_line(number, RECEIVABLE, amount, "0", maturity, customer, reconciled),
        move_line(number, REVENUE, "0", amount),
    ]


# What each audit must find, and the records that look alike but must not count.
VIOLATIONS: list[tuple[str, dict[str, Any]]] = [
    # production orders, planned more than 7 days ago and not done: MO-AUD-1, the request, MO-AUD-3
    production("MO-AUD-1", "waiting", ago(30)),
    production(None, "request", ago(10)),
    production("MO-AUD-3", "draft", ago(8)),
    production("MO-AUD-4", "running", ago(3)),
    production("MO-AUD-5", "done", ago(60)),
    production("MO-AUD-6", "cancelled", ago(60)),
    production("MO-AUD-7", "waiting", None),
    # stagnant goods (no done move for 180 days, stock on hand): Bike Frame (10), Chain (4 - 1)
    stock_move("Bike Frame", "SUP", "STO", 10, "done", effective=ago(400)),
    stock_move("Chain", "SUP", "STO", 4, "done", effective=ago(200)),
    stock_move("Chain", "STO", "CUS", 1, "done", effective=ago(190)),
    stock_move("Wheel", "SUP", "STO", 3, "done", effective=ago(10)),
    stock_move("Saddle", "SUP", "STO", 5, "done", effective=ago(400)),
    stock_move("Saddle", "STO", "CUS", 5, "done", effective=ago(300)),
    stock_move("Bike Frame", "STO", "CUS", 10, "draft", planned=ago(300)),  # not done: still on hand
    # customers with incomplete master data: Corner Shop (no address), Walk-in Customer (no tax id, e-mail)
    sale("Corner Shop", "quotation", "SO-AUD-20", quotation_date=ago(0)),
    sale("Walk-in Customer", "draft"),
    sale("Nameless Trader", "cancelled", "SO-AUD-21"),
    # sales in draft or quotation for more than 30 days: the old draft, SO-AUD-30
    sale("Brussels Bikes NV", "draft", created=ts_ago(40)),
    sale("Ghent Garden Supplies BV", "quotation", "SO-AUD-30", created=ts_ago(35), quotation_date=ago(31)),
    sale("Ghent Garden Supplies BV", "quotation", "SO-AUD-31", created=ts_ago(40), quotation_date=ago(5)),
    sale("Brussels Bikes NV", "done", "SO-AUD-32", created=ts_ago(100), sale_date=ago(100),
         shipment_state="sent"),
    # purchases in draft or quotation for more than 14 days: the old draft, PO-AUD-2
    purchase("Antwerp Steelworks NV", "draft", ts_ago(20)),
    purchase("Paper & Co", "quotation", ts_ago(15), "PO-AUD-2"),
    purchase("Paper & Co", "draft", ts_ago(3)),
    purchase("Paper & Co", "confirmed", ts_ago(60), "PO-AUD-4"),
    # confirmed sales not shipped 7 days after the sale date: SO-AUD-10, -11, -12
    sale("Brussels Bikes NV", "processing", "SO-AUD-10", sale_date=ago(10), shipment_state="waiting"),
    sale("Brussels Bikes NV", "confirmed", "SO-AUD-11", sale_date=ago(8)),
    sale("Ghent Garden Supplies BV", "processing", "SO-AUD-12", sale_date=ago(30), shipment_state="partially shipped"),
    sale("Ghent Garden Supplies BV", "processing", "SO-AUD-13", sale_date=ago(30), shipment_state="sent"),
    sale("Brussels Bikes NV", "processing", "SO-AUD-14", sale_date=ago(2), shipment_state="waiting"),
    # overdue receivables: M-AUD-1 and M-AUD-2
    ("account_move_reconciliation", {"company": COMPANY, "date": ago(10), "number": "R-AUD-1"}),
    *invoice_pair("M-AUD-1", "posted", "Brussels Bikes NV", "302.50", ago(15)),
    *invoice_pair("M-AUD-2", "posted", "Ghent Garden Supplies BV", "99.99", ago(40)),
    *invoice_pair("M-AUD-3", "posted", "Brussels Bikes NV", "50.00", ago(-10)),
    *invoice_pair("M-AUD-4", "posted", "Brussels Bikes NV", "70.00", ago(20), reconciled=True),
    *invoice_pair("M-AUD-5", "draft", "Ghent Garden Supplies BV", "80.00", ago(20)),
    account_move("M-AUD-6", "posted"),
    move_line("M-AUD-6", RECEIVABLE, "0", "25.00", ago(20), "Brussels Bikes NV"),
    move_line("M-AUD-6", REVENUE, "25.00", "0"),
    # late supplier deliveries: the two moves of the seeded purchase (planned date set below), and one without
    # a purchase; not: received, cancelled, planned in the future
    stock_move("Wheel", "SUP", "IN", 7, "draft", planned=ago(20)),
    stock_move("Wheel", "SUP", "IN", 2, "done", planned=ago(20), effective=ago(1)),
    stock_move("Chain", "SUP", "IN", 9, "cancelled", planned=ago(20)),
    stock_move("Chain", "SUP", "IN", 9, "draft", planned=ago(-3)),
    # -- compliance -------------------------------------------------------------------------------------
    ("company_employee", {"company": COMPANY, "party": party("Paper & Co")}),
    ("company_employee", {"company": COMPANY, "party": party("Antwerp Steelworks NV")}),
    # sales over 1000 quoted and confirmed by one employee: SO-CMP-1, SO-CMP-2; not: two people, small,
    # only quoted, nobody recorded
    sale("Brussels Bikes NV", "confirmed", "SO-CMP-1", quoted_by=ANNA, confirmed_by=ANNA,
         untaxed_amount_cache=Decimal("1500.00")),
    sale("Brussels Bikes NV", "done", "SO-CMP-2", quoted_by=BEN, confirmed_by=BEN, untaxed_amount_cache=Decimal("2000"),
         shipment_state="sent"),
    sale("Brussels Bikes NV", "processing", "SO-CMP-3", quoted_by=ANNA, confirmed_by=BEN,
         untaxed_amount_cache=Decimal("5000"), shipment_state="sent"),
    sale("Brussels Bikes NV", "confirmed", "SO-CMP-4", quoted_by=ANNA, confirmed_by=ANNA,
         untaxed_amount_cache=Decimal("500")),
    sale("Brussels Bikes NV", "quotation", "SO-CMP-5", quoted_by=ANNA, quotation_date=ago(0),
         untaxed_amount_cache=Decimal("9000")),
    sale("Brussels Bikes NV", "confirmed", "SO-CMP-6", untaxed_amount_cache=Decimal("9000")),
    # purchases likewise: PO-CMP-1; not: two people, small
    purchase("Paper & Co", "confirmed", ts_ago(2), "PO-CMP-1", quoted_by=BEN, confirmed_by=BEN,
             untaxed_amount_cache=Decimal("1200")),
    purchase("Paper & Co", "processing", ts_ago(2), "PO-CMP-2", quoted_by=ANNA, confirmed_by=BEN,
             untaxed_amount_cache=Decimal("3000")),
    purchase("Paper & Co", "confirmed", ts_ago(2), "PO-CMP-3", quoted_by=BEN, confirmed_by=BEN,
             untaxed_amount_cache=Decimal("100")),
    # moves posted more than 30 days after their date: M-CMP-1; not: 20 days late, a draft
    ("account_move", {**account_move("M-CMP-1", "posted")[1], "date": ago(60), "post_date": ago(10)}),
    ("account_move", {**account_move("M-CMP-2", "posted")[1], "date": ago(40), "post_date": ago(20)}),
    ("account_move", {**account_move("M-CMP-3", "draft")[1], "date": ago(90)}),
    # stock moved into or out of lost-and-found by hand within 30 days: two; not: old, from an inventory, a draft
    lost_found_move(True, "done", ago(5)),
    lost_found_move(False, "done", ago(2)),
    lost_found_move(True, "done", ago(45)),
    lost_found_move(True, "done", ago(5), origin="stock.inventory.line,1"),
    lost_found_move(True, "draft", ago(5)),
]
UPDATES = [
    f"UPDATE stock_move SET planned_date = '{ago(5)}' WHERE origin LIKE 'purchase.line,%'",
    # the seeded supplier invoice (from a purchase) posted by someone else than who validated it: no violation
    f"UPDATE account_invoice SET state = 'posted', validated_by = {ANNA.sql}, posted_by = {BEN.sql}, "
    "untaxed_amount_cache = 5000 WHERE type = 'in'",
    # supplier invoices: SI-CMP-1 validated and posted by one employee over 1000; SI-CMP-2 two people,
    # SI-CMP-3 small; a customer invoice posted by one employee. SI-CMP-1..4 have no purchase behind them.
    invoice_copy("in", "SI-CMP-1", "posted", ANNA, ANNA, 1500),
    invoice_copy("in", "SI-CMP-2", "paid", ANNA, BEN, 1500),
    invoice_copy("in", "SI-CMP-3", "posted", BEN, BEN, 100),
    invoice_copy("in", "SI-CMP-4", "validated", ANNA, None, 700),
    invoice_copy("out", "CI-CMP-1", "posted", ANNA, ANNA, 5000),
    # documents created under the admin login: the database was set up 40 days ago, and the seed's own
    # documents are handed to root (scripts); then SO-CMP-1 (today) and PO-CMP-1 (2 days ago) are admin's;
    # not: on the setup day, before the 30-day window, another user's
    f"UPDATE res_user SET create_date = '{ts_ago(40)}' WHERE login = 'admin'",
    *(f"UPDATE {table} SET create_uid = 0 WHERE create_uid = {ADMIN.sql}" for table in ADMIN_DOCUMENTS),
    f"UPDATE sale_sale SET create_uid = {ADMIN.sql} WHERE number IN ('SO-CMP-1', 'SO-CMP-4')",
    f"UPDATE sale_sale SET create_date = '{ts_ago(40)}' WHERE number = 'SO-CMP-4'",
    f"UPDATE purchase_purchase SET create_uid = {ADMIN.sql} WHERE number IN ('PO-CMP-1', 'PO-CMP-3')",
    f"UPDATE purchase_purchase SET create_date = '{ts_ago(35)}' WHERE number = 'PO-CMP-3'",
    "UPDATE sale_sale SET create_uid = (SELECT id FROM res_user WHERE login = 'alice') WHERE number = 'SO-CMP-3'",
]

EXPECTED_COUNTS = {
    "tryton_production_overdue": 3,
    "tryton_stagnant_materials": 2,
    "tryton_customer_master_data_incomplete": 2,
    "tryton_sale_quotations_stale": 2,
    "tryton_purchase_drafts_stale": 2,
    "tryton_sales_not_shipped": 3,
    "tryton_receivables_overdue": 2,
    "tryton_supplier_deliveries_late": 3,
    "tryton_sale_confirmed_by_quoter": 2,
    "tryton_purchase_confirmed_by_quoter": 1,
    "tryton_supplier_invoice_validated_and_posted_by_same_person": 1,
    "tryton_supplier_invoices_without_purchase": 4,
    "tryton_moves_posted_late": 1,
    "tryton_lost_found_moves_by_hand": 2,
    "tryton_documents_created_by_admin": 2,
}


def sqlite_insert(connection: sqlite3.Connection, table: str, values: dict[str, Any]) -> None:
    """Insert as Tryton's SQLite backend stores values: Decimal as the bytes of its text."""
    columns, marks, params = [], [], []
    for column, value in values.items():
        columns.append(column)
        if isinstance(value, Sub):
            marks.append(value.sql)
        else:
            marks.append("?")
            params.append(str(value).encode() if isinstance(value, Decimal) else value)
    connection.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(marks)})", params)


def pg_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, Sub):
        return value.sql
    if isinstance(value, int | float | Decimal):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def make_violations_sqlite(database: Path) -> None:
    with closing(sqlite3.connect(database)) as connection:
        for table, values in VIOLATIONS:
            sqlite_insert(connection, table, values)
        for statement in UPDATES:
            connection.execute(statement)
        connection.commit()


def violations_sql_postgres() -> str:
    statements = [
        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join(pg_literal(v) for v in values.values())});"
        for table, values in VIOLATIONS
    ]
    return "\n".join([*statements, *(f"{statement};" for statement in UPDATES)]) + "\n"


# -- independent counts: plain rows, the rules written again in Python ------------------------------------

Rows = Callable[[str], list[tuple[Any, ...]]]


def _date(value: Any) -> str | None:
    return None if value is None else str(value)[:10]


def _number(value: Any) -> float:
    return float(value.decode() if isinstance(value, bytes) else value)


def _true(value: Any) -> bool:
    return value in (1, True, "1", "t", "true")


def count_production_overdue(rows: Rows) -> int:
    limit = ago(7)
    return sum(
        1 for state, planned in rows("SELECT state, planned_date FROM production")
        if state not in ("done", "cancelled") and planned is not None and _date(planned) < limit
    )


def count_stagnant_materials(rows: Rows) -> int:
    on_hand: dict[int, float] = {}
    last: dict[int, str] = {}
    for product_id, state, effective, qty, source, dest in rows(
        "SELECT m.product, m.state, m.effective_date, m.internal_quantity, f.type, t.type "
        "FROM stock_move m, stock_location f, stock_location t WHERE f.id = m.from_location AND t.id = m.to_location"
    ):
        if state != "done":
            continue
        change = (_number(qty) if dest == "storage" else 0) - (_number(qty) if source == "storage" else 0)
        on_hand[product_id] = on_hand.get(product_id, 0.0) + change
        if effective is not None:
            last[product_id] = max(last.get(product_id, ""), _date(effective) or "")
    limit = ago(180)
    return sum(1 for p, qty in on_hand.items() if qty > 0.00001 and (p not in last or last[p] < limit))


def count_customers_incomplete(rows: Rows, tax_types: set[str]) -> int:
    customers = {p for p, state in rows("SELECT party, state FROM sale_sale") if state != "cancelled"}
    customers |= {p for p, kind, state in rows("SELECT party, type, state FROM account_invoice")
                  if kind == "out" and state != "cancelled"}
    active = {p for p, flag in rows("SELECT id, active FROM party_party") if _true(flag)}
    with_address = {p for p, flag in rows("SELECT party, active FROM party_address") if _true(flag)}
    with_tax = {p for p, kind, flag in rows("SELECT party, type, active FROM party_identifier")
                if _true(flag) and kind in tax_types}
    with_email = {p for p, kind, flag in rows("SELECT party, type, active FROM party_contact_mechanism")
                  if _true(flag) and kind == "email"}
    return sum(
        1 for p in customers & active
        if p not in with_address or p not in with_tax or p not in with_email
    )


def count_sale_quotations_stale(rows: Rows) -> int:
    limit = ago(30)
    return sum(
        1 for state, quoted, created in rows("SELECT state, quotation_date, create_date FROM sale_sale")
        if state in ("draft", "quotation") and (_date(quoted) or _date(created)) < limit
    )


def count_purchase_drafts_stale(rows: Rows) -> int:
    limit = ts_ago(14)
    return sum(
        1 for state, created in rows("SELECT state, create_date FROM purchase_purchase")
        if state in ("draft", "quotation") and str(created) < limit
    )


def count_sales_not_shipped(rows: Rows) -> int:
    limit = ago(7)
    return sum(
        1 for state, shipment, sold in rows("SELECT state, shipment_state, sale_date FROM sale_sale")
        if sold is not None and _date(sold) < limit
        and (state == "confirmed"
             or (state == "processing" and shipment in ("waiting", "partially shipped", "exception")))
    )


def count_receivables_overdue(rows: Rows) -> int:
    today = ago(0)
    return sum(
        1 for debit, credit, maturity, reconciliation, move_state, receivable in rows(
            "SELECT l.debit, l.credit, l.maturity_date, l.reconciliation, m.state, t.receivable "
            "FROM account_move_line l, account_move m, account_account a, account_account_type t "
            "WHERE m.id = l.move AND a.id = l.account AND t.id = a.type"
        )
        if _true(receivable) and move_state == "posted" and reconciliation is None
        and _number(debit) - _number(credit) > 0 and maturity is not None and _date(maturity) < today
    )


def count_supplier_deliveries_late(rows: Rows) -> int:
    today = ago(0)
    return sum(
        1 for state, planned, source, dest in rows(
            "SELECT m.state, m.planned_date, f.type, t.type FROM stock_move m, stock_location f, stock_location t "
            "WHERE f.id = m.from_location AND t.id = m.to_location"
        )
        if source == "supplier" and dest != "supplier" and state not in ("done", "cancelled")
        and planned is not None and _date(planned) < today
    )


def count_confirmed_by_quoter(rows: Rows, table: str) -> int:
    return sum(
        1 for state, quoted, confirmed, amount in rows(
            f"SELECT state, quoted_by, confirmed_by, untaxed_amount_cache FROM {table}"
        )
        if state in ("confirmed", "processing", "done") and quoted is not None and quoted == confirmed
        and amount is not None and _number(amount) > 1000
    )


def count_supplier_invoices(rows: Rows) -> tuple[int, int]:
    """(validated and posted by one employee over 1000, without a purchase line)."""
    from_purchase = {invoice for invoice, origin in rows("SELECT invoice, origin FROM account_invoice_line")
                     if origin is not None and str(origin).startswith("purchase.line,")}
    invoices = [row for row in rows(
        "SELECT id, type, state, validated_by, posted_by, untaxed_amount_cache FROM account_invoice"
    ) if row[1] == "in"]
    same = sum(1 for _, _, state, validated, posted, amount in invoices
               if state in ("posted", "paid") and posted is not None and validated == posted
               and amount is not None and _number(amount) > 1000)
    without = sum(1 for invoice, _, state, *_ in invoices
                  if state in ("validated", "posted", "paid") and invoice not in from_purchase)
    return same, without


def count_moves_posted_late(rows: Rows) -> int:
    return sum(
        1 for state, date, posted in rows("SELECT state, date, post_date FROM account_move")
        if state == "posted" and posted is not None
        and (dt.date.fromisoformat(_date(posted) or "") - dt.date.fromisoformat(_date(date) or "")).days > 30
    )


def count_lost_found_by_hand(rows: Rows) -> int:
    limit = ago(30)
    return sum(
        1 for state, effective, origin, shipment, source, dest in rows(
            "SELECT m.state, m.effective_date, m.origin, m.shipment, f.type, t.type FROM stock_move m, "
            "stock_location f, stock_location t WHERE f.id = m.from_location AND t.id = m.to_location"
        )
        if state == "done" and "lost_found" in (source, dest) and origin is None and shipment is None
        and effective is not None and (_date(effective) or "") >= limit
    )


def count_created_by_admin(rows: Rows) -> int:
    (admin, created), = rows("SELECT id, create_date FROM res_user WHERE login = 'admin'")
    setup_end = dt.datetime.fromisoformat(str(created)) + dt.timedelta(days=1)
    window = NOW - dt.timedelta(days=30)
    return sum(
        1 for table in ADMIN_DOCUMENTS for uid, stamp in rows(f"SELECT create_uid, create_date FROM {table}")
        if uid == admin and stamp is not None
        and dt.datetime.fromisoformat(str(stamp)) > max(setup_end, window)
    )


@pytest.fixture(scope="module")
def tax_identifier_types(tryton_install: TrytonInstall) -> dict[str, list[str]]:
    """Tryton's own lists: every identifier type, and those it counts as tax identifiers."""
    code = (
        "import json; from trytond.modules.party.party import IDENTIFIER_TYPES as A, TAX_IDENTIFIER_TYPES as T; "
        "print(json.dumps({'all': [t for t, _ in A], 'tax': sorted(set(T))}))"
    )
    output = subprocess.run(
        [str(tryton_install.python), "-c", code], capture_output=True, text=True, timeout=60, check=True,
        env=tryton_install.env(),
    )
    result: dict[str, list[str]] = json.loads(output.stdout)
    return result


def independent_counts(rows: Rows, tax_types: set[str]) -> dict[str, int]:
    return {
        "tryton_production_overdue": count_production_overdue(rows),
        "tryton_stagnant_materials": count_stagnant_materials(rows),
        "tryton_customer_master_data_incomplete": count_customers_incomplete(rows, tax_types),
        "tryton_sale_quotations_stale": count_sale_quotations_stale(rows),
        "tryton_purchase_drafts_stale": count_purchase_drafts_stale(rows),
        "tryton_sales_not_shipped": count_sales_not_shipped(rows),
        "tryton_receivables_overdue": count_receivables_overdue(rows),
        "tryton_supplier_deliveries_late": count_supplier_deliveries_late(rows),
        "tryton_sale_confirmed_by_quoter": count_confirmed_by_quoter(rows, "sale_sale"),
        "tryton_purchase_confirmed_by_quoter": count_confirmed_by_quoter(rows, "purchase_purchase"),
        "tryton_supplier_invoice_validated_and_posted_by_same_person": count_supplier_invoices(rows)[0],
        "tryton_supplier_invoices_without_purchase": count_supplier_invoices(rows)[1],
        "tryton_moves_posted_late": count_moves_posted_late(rows),
        "tryton_lost_found_moves_by_hand": count_lost_found_by_hand(rows),
        "tryton_documents_created_by_admin": count_created_by_admin(rows),
    }


# -- running the exporter ------------------------------------------------------------------------------


def sqlite_config(database: Path) -> str:
    return f"""\
targets:
  - name: tryton
    driver: SQLite3
    connection:
      database: {database}
    checks:
      - kind: audits
        packs: [tryton]
host:
  enabled: false
"""


def postgres_config(server: PostgresServer, database: str) -> str:
    return f"""\
targets:
  - name: tryton
    driver: PostgreSQL Unicode
    connection:
      server: {server.host}
      port: {server.port}
      database: {database}
    username: {EXPORTER_USER}
    password: {EXPORTER_PASSWORD}
    checks:
      - kind: audits
        packs: [tryton]
host:
  enabled: false
"""


@dataclass
class Round:
    """A round of every audit of the pack: results, and what it cost the database."""

    results: dict[str, AuditResult]
    errors: dict[str, str]
    statements: int  # of the first round, connects and session setup included
    seconds: float
    next_statements: int = 0  # of the next round, on the connections the first one opened


def run_audits(config_path: Path, rounds: int = 1) -> Round:
    loaded = load_config(config_path)
    store = ResultStore()
    runtime = build_runtime(loaded, default_registry(), store)
    audit_jobs = [job for job in runtime.jobs if isinstance(job.check, AuditCheck)]
    database = runtime.databases["tryton"]
    # only the audits: the default checks of the target would be counted in the statements otherwise
    scheduler = Scheduler(audit_jobs, store, runtime.workers, SchedulerSettings())
    store.configure({job.key: runtime.metas[job.key] for job in audit_jobs})
    counts = [database.statements_total]
    started = time.monotonic()
    scheduler.start(schedule=False)
    try:
        for _ in range(rounds):
            scheduler.run_once(timeout=120)
            counts.append(database.statements_total)
            if len(counts) == 2:
                seconds = time.monotonic() - started
    finally:
        scheduler.stop()
        runtime.stop()
    _, states = store.snapshot()
    errors = {s.key.check: s.error_message for s in states if not s.success}
    results = {}
    for job in audit_jobs:
        assert isinstance(job.check, AuditCheck)
        latest = job.check.latest()
        if latest is not None:
            results[job.check.audit.name] = latest
    following = counts[2] - counts[1] if rounds > 1 else 0
    return Round(results, errors, counts[1] - counts[0], seconds, following)


# -- SQLite ----------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_violations(tryton_sqlite_scratch: Path) -> Path:
    make_violations_sqlite(tryton_sqlite_scratch)
    return tryton_sqlite_scratch


def sqlite_rows(database: Path) -> Rows:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            return [tuple(row) for row in connection.execute(sql).fetchall()]

    return rows


@pytest.mark.parametrize("audit", sorted(EXPECTED_COUNTS))
def test_sqlite_audit_counts_every_record_made_to_violate_it(
    audit: str, sqlite_violations: Path, tmp_path: Path, tax_identifier_types: dict[str, list[str]]
) -> None:
    config = tmp_path / "erp-exporter.yml"
    config.write_text(sqlite_config(sqlite_violations))
    result = run_audits(config)
    assert result.errors == {}
    independent = independent_counts(sqlite_rows(sqlite_violations), set(tax_identifier_types["tax"]))
    assert result.results[audit].count == independent[audit] == EXPECTED_COUNTS[audit]


def test_sqlite_audits_find_nothing_in_the_freshly_seeded_database(tryton_sqlite_scratch: Path, tmp_path: Path) -> None:
    config = tmp_path / "erp-exporter.yml"
    config.write_text(sqlite_config(tryton_sqlite_scratch))
    result = run_audits(config)
    assert result.errors == {}
    assert {name: r.count for name, r in result.results.items()} == dict.fromkeys(EXPECTED_COUNTS, 0)


def test_sqlite_audit_keys_name_the_offending_records(sqlite_violations: Path, tmp_path: Path) -> None:
    config = tmp_path / "erp-exporter.yml"
    config.write_text(sqlite_config(sqlite_violations))
    results = run_audits(config).results
    request_id = sqlite_rows(sqlite_violations)("SELECT id FROM production WHERE state = 'request'")[0][0]
    old_draft = sqlite_rows(sqlite_violations)(
        f"SELECT id FROM sale_sale WHERE state = 'draft' AND create_date < '{ts_ago(30)}'"
    )[0][0]
    assert results["tryton_production_overdue"].samples == (
        f"MO-AUD-1 (Bike Frame, waiting, planned {ago(30)})",
        f"MO-AUD-3 (Bike Frame, draft, planned {ago(8)})",
        f"production #{request_id} (Bike Frame, request, planned {ago(10)})",
    )
    assert results["tryton_stagnant_materials"].samples == (
        f"Bike Frame: 10 on hand, last move {ago(400)}",
        f"Chain: 3 on hand, last move {ago(190)}",
    )
    assert results["tryton_customer_master_data_incomplete"].samples == (
        "Corner Shop [4]: no address",
        "Walk-in Customer [5]: no tax identifier, no e-mail",
    )
    assert results["tryton_sale_quotations_stale"].samples == (
        f"draft sale #{old_draft} (Brussels Bikes NV, draft since {ago(40)})",
        f"sale SO-AUD-30 (Ghent Garden Supplies BV, quotation since {ago(31)})",
    )
    assert results["tryton_sales_not_shipped"].samples == (
        f"sale SO-AUD-10 (Brussels Bikes NV, sold {ago(10)}, waiting)",
        f"sale SO-AUD-11 (Brussels Bikes NV, sold {ago(8)}, not processed)",
        f"sale SO-AUD-12 (Ghent Garden Supplies BV, sold {ago(30)}, partially shipped)",
    )
    receivables = results["tryton_receivables_overdue"].samples
    assert [key.split(" (move ")[0] for key in receivables] == [
        f"Brussels Bikes NV: 302.50 due {ago(15)}",
        f"Ghent Garden Supplies BV: 99.99 due {ago(40)}",
    ]
    late = results["tryton_supplier_deliveries_late"].samples
    assert [key.split(" (move ")[0] for key in late] == [
        f"purchase 1 (Paper & Co): Chain x50, planned {ago(5)}",
        f"purchase 1 (Paper & Co): Wheel x8, planned {ago(5)}",
        f"supplier move #{late[2].split('#')[1].split(':')[0]}: Wheel x7, planned {ago(20)}",
    ]


def test_customer_audit_counts_exactly_the_identifier_types_tryton_calls_tax_identifiers(
    tryton_sqlite_scratch: Path, tmp_path: Path, tax_identifier_types: dict[str, list[str]]
) -> None:
    # one complete customer per identifier type Tryton knows: only the non-tax types lack a tax identifier
    with closing(sqlite3.connect(tryton_sqlite_scratch)) as connection:
        for kind in sorted(set(tax_identifier_types["all"])):
            name = f"Identifier {kind}"
            connection.execute("INSERT INTO party_party (name, code, active) VALUES (?, ?, 1)", (name, name))
            ref = Sub(f"(SELECT id FROM party_party WHERE name = '{name}')")
            sqlite_insert(connection, "party_address", {"party": ref, "city": "Gent", "active": 1})
            sqlite_insert(connection, "party_contact_mechanism",
                          {"party": ref, "type": "email", "value": "x@y.example", "active": 1})
            sqlite_insert(connection, "party_identifier", {"party": ref, "type": kind, "code": "1", "active": 1})
            sqlite_insert(connection, *sale(name, "draft"))
        connection.commit()
    config = tmp_path / "erp-exporter.yml"
    config.write_text(sqlite_config(tryton_sqlite_scratch))
    found = run_audits(config).results["tryton_customer_master_data_incomplete"]
    without_tax = set(tax_identifier_types["all"]) - set(tax_identifier_types["tax"])
    assert found.count == len(without_tax)
    assert len(without_tax) > 0


def test_once_shows_every_tryton_audit_with_its_count_and_owner(
    sqlite_violations: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "erp-exporter.yml"
    config.write_text(sqlite_config(sqlite_violations))
    assert main(["once", "--config.file", str(config), "--show-metrics"]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\n")[1].splitlines()
    rows = {line.split()[1]: line.split()[2:7] for line in table[1:]}
    owners = {
        "tryton_production_overdue": "production",
        "tryton_stagnant_materials": "production",
        "tryton_customer_master_data_incomplete": "sales",
        "tryton_sale_quotations_stale": "sales",
        "tryton_purchase_drafts_stale": "procurement",
        "tryton_sales_not_shipped": "logistics",
        "tryton_receivables_overdue": "finance",
        "tryton_supplier_deliveries_late": "procurement",
        "tryton_sale_confirmed_by_quoter": "sales",
        "tryton_purchase_confirmed_by_quoter": "procurement",
        "tryton_supplier_invoice_validated_and_posted_by_same_person": "finance",
        "tryton_supplier_invoices_without_purchase": "procurement",
        "tryton_moves_posted_late": "finance",
        "tryton_lost_found_moves_by_hand": "logistics",
        "tryton_documents_created_by_admin": "it",
    }
    assert {name: (row[0], int(row[3])) for name, row in rows.items()} == {
        name: (owners[name], EXPECTED_COUNTS[name]) for name in EXPECTED_COUNTS
    }
    for name, count in EXPECTED_COUNTS.items():
        assert f'erp_audit_violations{{audit="{name}",' in out
        line = next(x for x in out.splitlines() if x.startswith(f'erp_audit_violations{{audit="{name}",'))
        assert f'owner="{owners[name]}"' in line
        assert line.endswith(f"}} {count}")


# -- PostgreSQL ------------------------------------------------------------------------------------------

PG_DATABASE = "tryton_audits"


@pytest.fixture(scope="module")
def postgres_violations(postgres: PostgresServer, tryton_postgres_db: str) -> Iterator[str]:
    """A copy of the seeded Tryton database with the violations, readable by the exporter role."""
    deadline = time.monotonic() + 30
    while True:
        try:
            postgres.psql(
                f'DROP DATABASE IF EXISTS "{PG_DATABASE}";\n'
                f'CREATE DATABASE "{PG_DATABASE}" TEMPLATE "{tryton_postgres_db}";\n',
                database="postgres",
            )
            break
        except ServerError as exc:  # the template must have no other session: wait for them to go
            if "is being accessed by other users" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    postgres.psql(violations_sql_postgres(), database=PG_DATABASE)
    grant_read_only(postgres, PG_DATABASE, EXPORTER_USER)
    yield PG_DATABASE
    postgres.psql(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE);\n', database="postgres")


@pytest.fixture(scope="module")
def postgres_round(
    postgres: PostgresServer, postgres_violations: str, tmp_path_factory: pytest.TempPathFactory
) -> Round:
    config = tmp_path_factory.mktemp("tryton-audits-pg") / "erp-exporter.yml"
    config.write_text(postgres_config(postgres, postgres_violations))
    return run_audits(config)


def postgres_rows(server: PostgresServer, database: str) -> Rows:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        with closing(pyodbc.connect(server.connection_string(database=database), autocommit=True)) as connection:
            return [tuple(row) for row in connection.execute(sql).fetchall()]

    return rows


@pytest.mark.parametrize("audit", sorted(EXPECTED_COUNTS))
def test_postgres_audit_counts_every_record_made_to_violate_it(
    audit: str,
    postgres: PostgresServer,
    postgres_violations: str,
    postgres_round: Round,
    tax_identifier_types: dict[str, list[str]],
) -> None:
    assert postgres_round.errors == {}
    independent = independent_counts(postgres_rows(postgres, postgres_violations), set(tax_identifier_types["tax"]))
    assert postgres_round.results[audit].count == independent[audit] == EXPECTED_COUNTS[audit]


def test_postgres_and_sqlite_audits_give_the_same_keys(
    postgres_round: Round, sqlite_violations: Path, tmp_path: Path
) -> None:
    config = tmp_path / "erp-exporter.yml"
    config.write_text(sqlite_config(sqlite_violations))
    sqlite_round = run_audits(config)
    # ids of inserted rows differ between the two databases: compare the keys without them
    def strip_ids(keys: tuple[str, ...]) -> list[str]:
        return [key.split(" (move ")[0].split("#")[0] for key in keys]

    for name in EXPECTED_COUNTS:
        assert strip_ids(postgres_round.results[name].samples) == strip_ids(sqlite_round.results[name].samples), name


def test_a_round_of_the_tryton_audits_costs_one_statement_per_audit(
    postgres: PostgresServer, postgres_violations: str, tmp_path: Path
) -> None:
    config = tmp_path / "erp-exporter.yml"
    config.write_text(postgres_config(postgres, postgres_violations))
    result = run_audits(config, rounds=2)
    assert result.errors == {}
    # the first round also opens the connections (session setup); later rounds send the audits' queries only
    assert result.next_statements == len(EXPECTED_COUNTS)
