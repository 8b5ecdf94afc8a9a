"""Seed a Tryton database with a company, users, master data and (optionally) demo sales and purchases.

Run it with the Python of the Tryton virtualenv (it imports ``proteus`` and ``trytond``), on a database
that ``trytond-admin`` has already initialised::

    .venv-tryton/bin/python deploy/tryton/seed.py --config trytond.conf --database tryton \\
        --users 5 --password 'Demo-Passw0rd-2024' --demo-data

It talks to the database directly through proteus' trytond backend (no server needed) as the ``admin``
user, and it is idempotent: every record is looked up by a natural key (company party name, user login,
party name, product name, sale/purchase description) and only created when missing, so running it twice
changes nothing the second time. It prints a JSON summary on stdout.

What it creates, depending on the activated modules:

* always: the company (its party and currency, ``EUR`` by default);
* ``account``: the "Universal Chart of Accounts" (``account.account_template_root_en``, the chart the
  Tryton test scenarios use), a fiscal year around today with its monthly periods and, with
  ``account_invoice``, its invoice sequences and a "Direct" payment term;
* ``--users N`` / ``--login LOGIN``: users (alice, bob, carol, ... then userNN) with ``--password``,
  member of the company and of one functional group each (Sales, Purchase, Stock, ...);
* ``--master-data``: customers and suppliers (some with incomplete master data: no address, no tax
  identifier, no e-mail) and goods with a list price and a cost price (one without a cost price);
* ``--demo-data`` (implies ``--master-data``): sales in draft, quotation and confirmed state, purchases
  in draft and confirmed state (only when ``sale`` / ``purchase`` are activated).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import proteus.config
from proteus import Model, Wizard

DEFAULT_PASSWORD = "Demo-Passw0rd-2024"  # noqa: S105 - the documented demo password
USER_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
)  # fmt: skip
# one functional group per user, cycling (only the groups whose module is activated are used)
USER_GROUPS = ("Sales", "Purchase", "Stock", "Accounting", "Production")
EMAIL_DOMAIN = "acme.example"

# (name, role, has address, has tax identifier, has e-mail)
PARTIES: tuple[tuple[str, str, bool, bool, bool], ...] = (
    ("Brussels Bikes NV", "customer", True, True, True),
    ("Ghent Garden Supplies BV", "customer", True, True, True),
    ("Corner Shop", "customer", False, True, True),
    ("Walk-in Customer", "customer", True, False, False),
    ("Antwerp Steelworks NV", "supplier", True, True, True),
    ("Paper & Co", "supplier", True, True, False),
    ("Nameless Trader", "supplier", False, False, False),
)
# (name, list price, cost price or None)
PRODUCTS: tuple[tuple[str, str, str | None], ...] = (
    ("Bike Frame", "250.00", "120.00"),
    ("Wheel", "60.00", "25.00"),
    ("Chain", "15.00", "5.50"),
    ("Saddle", "35.00", None),  # incomplete master data: no cost price (Tryton stores 0)
)


def _vat_be(seed: int) -> str:
    """A valid Belgian VAT number (check digits = 97 - base mod 97) derived from ``seed``."""
    base = 4_000_000 + seed * 1_013
    check = 97 - (base % 97)
    return f"BE0{base:07d}{check:02d}"


def user_logins(count: int) -> list[str]:
    """The first ``count`` standard logins: alice, bob, carol, ... then user11, user12, ..."""
    return [USER_NAMES[i] if i < len(USER_NAMES) else f"user{i + 1:02d}" for i in range(count)]


class Seeder:
    """Idempotent creation of the seed records through proteus (``Model``/``Wizard`` are proteus')."""

    def __init__(self, config: Any, company_name: str, currency_code: str) -> None:
        self.config = config
        self.company_name = company_name
        self.currency_code = currency_code
        self.created: dict[str, int] = {}
        Module = Model.get("ir.module")  # noqa: N806 - proteus models are classes
        self.modules = {module.name for module in Module.find([("state", "=", "activated")])}
        self.company: Any = None

    def _count(self, what: str) -> None:
        self.created[what] = self.created.get(what, 0) + 1

    # -- company and accounting ---------------------------------------------------------------------

    def currency(self) -> Any:
        """The company currency, created (rate 1) if missing."""
        Currency = Model.get("currency.currency")  # noqa: N806
        Rate = Model.get("currency.currency.rate")  # noqa: N806
        found = Currency.find([("code", "=", self.currency_code)])
        if found:
            return found[0]
        names = {"EUR": ("Euro", "€"), "USD": ("U.S. Dollar", "$")}
        name, symbol = names.get(self.currency_code, (self.currency_code, self.currency_code))
        currency = Currency(name=name, symbol=symbol, code=self.currency_code, rounding=Decimal("0.01"))
        currency.save()
        Rate(date=datetime.date(2000, 1, 1), rate=Decimal(1), currency=currency).save()
        self._count("currencies")
        return currency

    def ensure_company(self) -> Any:
        """The (first) company, created with the company configuration wizard if there is none."""
        Company = Model.get("company.company")  # noqa: N806
        Party = Model.get("party.party")  # noqa: N806
        User = Model.get("res.user")  # noqa: N806
        companies = Company.find([])
        if companies:
            self.company = companies[0]
        else:
            party = Party(name=self.company_name)
            party.save()
            wizard = Wizard("company.company.config")
            wizard.execute("company")
            wizard.form.party = party
            wizard.form.currency = self.currency()
            wizard.execute("add")
            self.company = Company.find([])[0]
            self._count("companies")
        # the admin's preferences now carry the company: later records belong to it
        self.config._context = User.get_preferences(True, {})
        return self.company

    def ensure_accounting(self) -> None:
        """Chart of accounts, fiscal year with periods and invoice sequences, payment term."""
        if "account" not in self.modules:
            return
        # trytond modules are imported only now: trytond.backend picks its backend (sqlite or
        # postgresql) from the configuration when it is first imported, i.e. after set_trytond()
        from trytond.modules.account.tests.tools import create_chart, create_fiscalyear  # noqa: PLC0415

        Account = Model.get("account.account")  # noqa: N806
        FiscalYear = Model.get("account.fiscalyear")  # noqa: N806
        if not Account.find([("company", "=", self.company.id)], limit=1):
            create_chart(self.company, chart="account.account_template_root_en", config=self.config)
            self._count("account_charts")
        today = datetime.date.today()
        if not FiscalYear.find(
            [
                ("company", "=", self.company.id),
                ("start_date", "<=", today),
                ("end_date", ">=", today),
            ]
        ):
            fiscalyear = create_fiscalyear(self.company, today=today, config=self.config)
            if "account_invoice" in self.modules:
                from trytond.modules.account_invoice.tests.tools import (  # noqa: PLC0415
                    set_fiscalyear_invoice_sequences,
                )

                set_fiscalyear_invoice_sequences(fiscalyear, config=self.config)
            fiscalyear.save()
            fiscalyear.click("create_period")
            self._count("fiscal_years")
        if "account_invoice" in self.modules:
            PaymentTerm = Model.get("account.invoice.payment_term")  # noqa: N806
            if not PaymentTerm.find([("name", "=", "Direct")]):
                term = PaymentTerm(name="Direct")
                term.lines.new(type="remainder")
                term.save()
                self._count("payment_terms")

    def accounts(self) -> dict[str, Any]:
        """The company's receivable/payable/revenue/expense accounts (empty without ``account``)."""
        if "account" not in self.modules:
            return {}
        from trytond.modules.account.tests.tools import get_accounts  # noqa: PLC0415

        accounts: dict[str, Any] = get_accounts(self.company, config=self.config)
        return accounts

    # -- users --------------------------------------------------------------------------------------

    def ensure_users(self, logins: Sequence[str], password: str) -> list[dict[str, Any]]:
        """Users with ``password`` (set on creation only), member of the company and of one group each."""
        User = Model.get("res.user")  # noqa: N806
        Group = Model.get("res.group")  # noqa: N806
        groups = {group.name: group for group in Group.find([("name", "in", list(USER_GROUPS))])}
        available = [name for name in USER_GROUPS if name in groups]
        result = []
        for index, login in enumerate(logins):
            found = User.find([("login", "=", login)])
            if found:
                user = found[0]
            else:
                user = User(
                    name=login.replace("_", " ").title(),
                    login=login,
                    password=password,
                    email=f"{login}@{EMAIL_DOMAIN}",
                )
                user.companies.append(Model.get("company.company")(self.company.id))
                user.company = Model.get("company.company")(self.company.id)
                if available:
                    user.groups.append(Group(groups[available[index % len(available)]].id))
                user.save()
                self._count("users")
            result.append({"id": user.id, "login": user.login})
        return result

    # -- master data --------------------------------------------------------------------------------

    def _country(self) -> Any:
        Country = Model.get("country.country")  # noqa: N806
        found = Country.find([("code", "=", "BE")])
        if found:
            return found[0]
        country = Country(name="Belgium", code="BE", code3="BEL", code_numeric="056")
        country.save()
        return country

    def ensure_parties(self) -> dict[str, Any]:
        """Customers and suppliers, some with incomplete master data (see ``PARTIES``)."""
        Party = Model.get("party.party")  # noqa: N806
        country = self._country() if "country" in self.modules else None
        parties: dict[str, Any] = {}
        for index, (name, role, has_address, has_tax_id, has_email) in enumerate(PARTIES):
            found = Party.find([("name", "=", name)])
            if found:
                parties[name] = found[0]
                continue
            party = Party(name=name)
            while party.addresses:  # a new party gets one empty address by default
                party.addresses.pop()
            if has_address:
                address = party.addresses.new()
                address.street = f"{10 + index} {role.title()} Street"
                address.postal_code = f"{1000 + 100 * index}"
                address.city = "Brussels"
                if country is not None:
                    address.country = country
            if has_tax_id:
                party.identifiers.new(type="eu_vat", code=_vat_be(index))
            if has_email:
                slug = "".join(ch for ch in name.lower() if ch.isalnum())[:20]
                party.contact_mechanisms.new(type="email", value=f"orders@{slug}.example")
            party.contact_mechanisms.new(type="phone", value=f"+32 2 555 {index:02d} 00")
            party.save()
            parties[name] = party
            self._count("parties")
        return parties

    def ensure_products(self) -> dict[str, Any]:
        """Goods (unit) with a list price and a cost price, salable and purchasable when possible."""
        Template = Model.get("product.template")  # noqa: N806
        Uom = Model.get("product.uom")  # noqa: N806
        Category = Model.get("product.category")  # noqa: N806
        unit = Uom.find([("name", "=", "Unit")])[0]
        category = None
        accounts = self.accounts()
        if "account_product" in self.modules and accounts:
            found = Category.find([("name", "=", "Goods")])
            if found:
                category = found[0]
            else:
                category = Category(name="Goods", accounting=True)
                category.account_expense = accounts["expense"]
                category.account_revenue = accounts["revenue"]
                category.save()
                self._count("product_categories")
        products: dict[str, Any] = {}
        for name, list_price, cost_price in PRODUCTS:
            found = Template.find([("name", "=", name)])
            if found:
                products[name] = found[0].products[0]
                continue
            template = Template(name=name, default_uom=unit, type="goods", list_price=Decimal(list_price))
            if "sale" in self.modules:
                template.salable = True
            if "purchase" in self.modules:
                template.purchasable = True
            if category is not None:
                template.account_category = category
            template.save()
            product = template.products[0]
            if cost_price is not None:
                product.cost_price = Decimal(cost_price)
                product.save()
            products[name] = product
            self._count("products")
        return products

    # -- demo documents -----------------------------------------------------------------------------

    def ensure_sales(self, parties: dict[str, Any], products: dict[str, Any]) -> int:
        """Three sales described ``seed:sale:N``: draft, quotation and confirmed."""
        if "sale" not in self.modules:
            return 0
        Sale = Model.get("sale.sale")  # noqa: N806
        PaymentTerm = Model.get("account.invoice.payment_term")  # noqa: N806
        terms = PaymentTerm.find([("name", "=", "Direct")]) if "account_invoice" in self.modules else []
        plans = (
            ("seed:sale:1", "Brussels Bikes NV", (("Bike Frame", 2), ("Wheel", 4)), None),
            ("seed:sale:2", "Ghent Garden Supplies BV", (("Chain", 10),), "quote"),
            ("seed:sale:3", "Brussels Bikes NV", (("Wheel", 2), ("Chain", 2)), "confirm"),
        )
        for description, party_name, lines, action in plans:
            if Sale.find([("description", "=", description)]):
                continue
            sale = Sale(party=parties[party_name], description=description)
            if terms:
                sale.payment_term = terms[0]
            for product_name, quantity in lines:
                line = sale.lines.new()
                line.product = products[product_name]
                line.quantity = float(quantity)
            sale.save()
            if action == "quote":
                sale.click("quote")
            elif action == "confirm":
                sale.click("quote")
                sale.click("confirm")
            self._count("sales")
        return len(Sale.find([("description", "like", "seed:sale:%")]))

    def ensure_purchases(self, parties: dict[str, Any], products: dict[str, Any]) -> int:
        """Two purchases described ``seed:purchase:N``: draft and confirmed."""
        if "purchase" not in self.modules:
            return 0
        Purchase = Model.get("purchase.purchase")  # noqa: N806
        PaymentTerm = Model.get("account.invoice.payment_term")  # noqa: N806
        terms = PaymentTerm.find([("name", "=", "Direct")]) if "account_invoice" in self.modules else []
        plans = (
            ("seed:purchase:1", "Antwerp Steelworks NV", (("Bike Frame", 5, "115.00"),), None),
            ("seed:purchase:2", "Paper & Co", (("Chain", 50, "5.00"), ("Wheel", 8, "24.00")), "confirm"),
        )
        for description, party_name, lines, action in plans:
            if Purchase.find([("description", "=", description)]):
                continue
            purchase = Purchase(party=parties[party_name], description=description)
            if terms:
                purchase.payment_term = terms[0]
            for product_name, quantity, unit_price in lines:
                line = purchase.lines.new()
                line.product = products[product_name]
                line.quantity = float(quantity)
                line.unit_price = Decimal(unit_price)
            purchase.save()
            if action == "confirm":
                purchase.click("quote")
                purchase.click("confirm")
            self._count("purchases")
        return len(Purchase.find([("description", "like", "seed:purchase:%")]))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the trytond.conf of the database")
    parser.add_argument("--database", required=True, help="the database name (SQLite: file name w/o .sqlite)")
    parser.add_argument("--company", default="Acme Demo Ltd", help="the company name (on first run)")
    parser.add_argument("--currency", default="EUR", help="the company currency code (on first run)")
    parser.add_argument("--users", type=int, default=0, metavar="N", help="create alice, bob, carol, ...")
    parser.add_argument("--login", action="append", default=[], help="also create this login (repeatable)")
    parser.add_argument(
        "--password",
        default=DEFAULT_PASSWORD,
        help="password of the created users (8+ characters; set on creation only)",
    )
    parser.add_argument("--master-data", action="store_true", help="create customers, suppliers, goods")
    parser.add_argument(
        "--demo-data", action="store_true", help="also create sales and purchases (implies --master-data)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Seed the database and print a JSON summary; return the exit code."""
    args = parse_args(argv)
    if len(args.password) < 8:
        print("seed.py: --password must have at least 8 characters", file=sys.stderr)
        return 2
    config = proteus.config.set_trytond(database=args.database, config_file=args.config)
    seeder = Seeder(config, args.company, args.currency)
    company = seeder.ensure_company()
    seeder.ensure_accounting()
    logins = list(dict.fromkeys([*user_logins(args.users), *args.login]))
    users = seeder.ensure_users(logins, args.password)
    summary: dict[str, Any] = {
        "database": args.database,
        "company": {"id": company.id, "name": company.party.name},
        "modules": sorted(seeder.modules),
        "users": users,
    }
    if args.master_data or args.demo_data:
        parties = seeder.ensure_parties()
        products = seeder.ensure_products()
        summary["parties"] = sorted(parties)
        summary["products"] = sorted(products)
        if args.demo_data:
            summary["sales"] = seeder.ensure_sales(parties, products)
            summary["purchases"] = seeder.ensure_purchases(parties, products)
    summary["created"] = seeder.created
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
