"""The state of one simulation run and the building blocks everything else uses: the vendor master
(with its change history), payment orders placed in payment runs, and the rendering into events."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from paysentry.simulation.config import MDM_USERS, RISK_USERS, SimulatedCompany, SimulationConfig
from paysentry.simulation.payments import Payment
from paysentry.simulation.world import (
    Account,
    AccountBook,
    Vendor,
    add_business_days,
    is_business_day,
    local_day,
    local_instant,
    local_seconds,
    money,
    poisson,
    rfc3339,
    vendor_name,
    weighted_choice,
)
from paysentry.windows import HOUR

OFFICE_OPEN, OFFICE_CLOSE = 8 * HOUR + 1800, 18 * HOUR - 60  # people draft and approve 08:30-18:00
FAILURE_SPACING = timedelta(hours=3)  # everyday failures on one channel never cluster


class Simulation:
    """One run's world. `paysentry.simulate.simulate` drives it step by step; `render()` turns it into
    (events, labels), contract dicts sorted by time."""

    def __init__(self, config: SimulationConfig):
        self.config = config
        self.rng = random.Random(config.seed)
        self.days = [config.start + timedelta(days=i) for i in range(config.days)]
        self.bdays = [day for day in self.days if is_business_day(day)]
        self.last_day = self.days[-1]
        self.warm_from = config.start + timedelta(days=config.warmup_days)
        self.accounts = AccountBook(self.rng)
        self.vendors: list[Vendor] = []
        self.vendor_ids: set[str] = set()
        self.names: set[str] = set()
        self.payments: list[Payment] = []
        self.vendor_events: list[tuple[datetime, SimulatedCompany, str, dict[str, Any]]] = []
        self.used: set[int] = set()  # payments an injection or an everyday mishap already owns
        self.failure_times: dict[str, list[datetime]] = {}
        self.seq = 0
        self._released_on: dict[int, date] = {}
        self.median: dict[str, float] = {}
        self.p95: dict[str, float] = {}

    # --- vendors --------------------------------------------------------------------------------

    def _new_vendor_id(self) -> str:
        while True:
            vendor_id = f"V{self.rng.randint(10000, 99999)}"
            if vendor_id not in self.vendor_ids:
                self.vendor_ids.add(vendor_id)
                return vendor_id

    def _new_name(self, country: str) -> str:
        for _ in range(50):
            name = vendor_name(self.rng, country)
            if name not in self.names:
                break
        else:
            name = f"{name} {len(self.names)}"
        self.names.add(name)
        return name

    def make_vendor(
        self,
        company: SimulatedCompany,
        *,
        country: str | None = None,
        typical: float | None = None,
        rate: float = 0.0,
        since: datetime,
        created_on: date,
        account: Account | None = None,
        payable_from: date | None = None,
    ) -> Vendor:
        rng = self.rng
        country = country or weighted_choice(rng, company.vendor_countries)
        if typical is None:
            typical = math.exp(rng.gauss(math.log(company.typical_amount), company.typical_spread))
            limit = float(company.approval_limit)
            typical = min(max(typical, company.typical_amount / 40), limit * 1.6)
        if country in company.domestic_countries:
            habits = [h for h in company.channels if h.min_typical <= typical <= h.max_typical]
            habits = habits or [max(company.channels, key=lambda h: h.weight)]
            primary = weighted_choice(rng, tuple((h.channel, h.weight) for h in habits))
            others = [h.channel for h in habits if h.channel != primary]
        else:
            primary, others = company.foreign_channel, []
        share = rng.uniform(0.85, 0.97) if others else 1.0
        channels = [(primary, share)] + [(c, share + (1 - share) * (i + 1) / len(others)) for i, c in enumerate(others)]
        vendor = Vendor(
            vendor_id=self._new_vendor_id(),
            company=company,
            country=country,
            typical=typical,
            sigma=rng.uniform(0.15, 0.45),
            rate=rate,
            channels=tuple(channels),
            created_on=created_on,
            accounts=[(since, account or self.accounts.new(country))],
            names=[(since, self._new_name(country))],
            invoice_next=rng.randint(10_000, 9_000_000),
            round_to=rng.choice((10, 100)) if rng.random() < 0.15 else 0,
            payable_from=payable_from,
        )
        self.vendors.append(vendor)
        return vendor

    def build_master(self) -> None:
        config, rng = self.config, self.rng
        companies = config.companies
        total_share = sum(c.vendor_share for c in companies)
        counts = [max(2, round(config.vendors * c.vendor_share / total_share)) for c in companies]
        counts[-1] = max(2, config.vendors - sum(counts[:-1]))
        index = 0
        for company, count in zip(companies, counts, strict=True):
            # A few vendors are paid almost daily, many only now and then; every company's volume is
            # in proportion to its share of the vendor master.
            raw_rates = [rng.lognormvariate(0.0, 0.9) for _ in range(count)]
            scale = config.payments_per_vendor_day * count / sum(raw_rates)
            for raw_rate in raw_rates:
                created_on = config.start - timedelta(days=rng.randint(60, 1500))
                origin = datetime(created_on.year, created_on.month, created_on.day, 9, tzinfo=UTC)
                rate = min(raw_rate * scale, 6.0)
                vendor = self.make_vendor(company, rate=rate, since=origin, created_on=created_on)
                if rng.random() < 0.08:  # rent, leases, retainers: the same amount every week
                    limit = float(company.approval_limit)
                    fixed = min(round(vendor.typical, -2) or 100.0, limit * 0.8)
                    vendor.fixed_amount, vendor.fixed_weekday = money(float(fixed)), rng.randint(0, 4)
                # vendor.created carries the vendor's real creation time, months or years back
                self.vendor_event(origin + timedelta(seconds=index), "vendor.created", vendor)
                index += 1

    def vendor_event(
        self, instant: datetime, kind: str, vendor: Vendor, changed_by: str | None = None, **changes: Any
    ) -> None:
        fields: dict[str, Any] = {"vendor_id": vendor.vendor_id, "company_code": vendor.company.code}
        if kind == "vendor.created":
            account = vendor.account_at(instant)
            fields.update(
                vendor_name=vendor.name_at(instant),
                payee_account=account.number,
                payee_bank=account.bank,
                payee_country=account.country,
                currency=vendor.company.currency,
                channel=vendor.channels[0][0],
                changed_by=changed_by or self.rng.choice(MDM_USERS),
                created_on=vendor.created_on.isoformat(),
            )
        else:
            fields.update(changes)
            fields["changed_by"] = changed_by or self.rng.choice(MDM_USERS)
        self.vendor_events.append((instant, vendor.company, kind, fields))

    def change_account(self, vendor: Vendor, instant: datetime, account: Account, changed_by: str) -> None:
        vendor.accounts.append((instant, account))
        vendor.accounts.sort(key=lambda entry: entry[0])
        change = {"payee_account": account.number, "payee_bank": account.bank, "payee_country": account.country}
        self.vendor_event(instant, "vendor.updated", vendor, changed_by, **change)

    def clear_in_flight(self, vendor: Vendor, start: datetime, end: datetime) -> None:
        """Drop the vendor's untouched payments that would straddle a master-data change."""
        self.payments = [
            p
            for p in self.payments
            if not (p.vendor is vendor and p.seq not in self.used and p.label is None)
            or p.created_at > end
            or p.released_at < start
        ]

    def fits(self, vendor: Vendor, payment: Payment) -> bool:
        """True when no master-data change or blocked window falls inside the payment's life."""
        if any(payment.created_at < since <= payment.released_at for since, _ in vendor.accounts):
            return False
        return not any(payment.created_at <= end and payment.released_at >= start for start, end in vendor.blocked)

    # --- payments -------------------------------------------------------------------------------

    def office_time(self, company: SimulatedCompany, day: date, low: int = 9 * HOUR, high: int = 17 * HOUR) -> datetime:
        return local_instant(company, day, self.rng.randint(low, high))

    def release_slot(self, company: SimulatedCompany, day: date, run: int | None) -> tuple[datetime, str | None]:
        """A payment run (batch id, released within minutes of the run time) or a manual release (None)."""
        if run is None:
            return self.office_time(company, day, 9 * HOUR + 1800, 16 * HOUR + 1800), None
        at = company.run_times[run]
        seconds = at.hour * HOUR + at.minute * 60 + self.rng.randint(0, 240)
        return local_instant(company, day, seconds), f"F110-{day:%Y%m%d}-{company.code}-{run + 1}"

    def new_payment(
        self,
        vendor: Vendor,
        day: date,
        *,
        amount: Decimal | None = None,
        invoice_id: str | None = None,
        po_id: str | None = "",
        channel: str | None = None,
        run: int | None | Literal["any"] = "any",
        lead: int | None = None,
        clerk: str | None = None,
        approvers: list[str] | None = None,
        add: bool = True,
    ) -> Payment:
        """A payment order for `vendor` released on `day`, drafted and approved in office hours before."""
        rng, company = self.rng, vendor.company
        if run == "any":
            run = None if rng.random() < 0.05 else rng.randrange(len(company.run_times))
        released_at, batch = self.release_slot(company, day, run if isinstance(run, int) else None)
        release_s = local_seconds(company, released_at)
        if lead is None:
            lead = rng.choices((0, 1, 2, 3), weights=(45, 30, 15, 10))[0]
        created_day = add_business_days(day, -lead) if lead else day
        if created_day < self.days[0]:
            created_day = day
        if created_day == day:
            created_s = rng.randint(OFFICE_OPEN, release_s - 1800)
            created_at = local_instant(company, day, created_s)
            approved_at = local_instant(company, day, rng.randint(created_s + 300, release_s - 300))
        else:
            created_s = rng.randint(OFFICE_OPEN, 17 * HOUR + 1800)
            created_at = local_instant(company, created_day, created_s)
            span = (created_day + timedelta(days=i) for i in range((day - created_day).days + 1))
            approval_day = rng.choice([d for d in span if is_business_day(d)])
            low = created_s + 300 if approval_day == created_day else OFFICE_OPEN
            high = release_s - 300 if approval_day == day else OFFICE_CLOSE
            approved_at = local_instant(company, approval_day, rng.randint(low, high))
        amount = amount if amount is not None else vendor.draw_amount(rng, company.approval_limit)
        if approvers is None:
            two = amount >= company.approval_limit
            approvers = rng.sample(company.approvers, 2) if two else [rng.choice(company.approvers)]
        if po_id == "":
            po_id = f"PO-45{rng.randint(0, 99_999_999):08d}" if rng.random() < 0.85 else None
        due_offset = rng.randint(-8, -1) if rng.random() < 0.12 else rng.randint(0, 14)
        self.seq += 1
        payment = Payment(
            seq=self.seq,
            company=company,
            vendor=vendor,
            amount=amount,
            channel=channel or vendor.pick_channel(rng),
            invoice_id=invoice_id or vendor.next_invoice(rng),
            po_id=po_id,
            created_by=clerk or rng.choice(company.clerks),
            approved_by=approvers,
            created_at=created_at,
            approved_at=approved_at,
            released_at=released_at,
            batch=batch,
            due_date=day + timedelta(days=due_offset),
        )
        payment.schedule_platform(rng)
        if add:
            self.payments.append(payment)
        return payment

    def schedule(self) -> None:
        rng = self.rng
        for day in self.bdays:
            for vendor in self.vendors:
                if vendor.payable_from is not None and day < vendor.payable_from:
                    continue
                if vendor.fixed_amount is not None:
                    count = 1 if day.weekday() == vendor.fixed_weekday else 0
                else:
                    count = poisson(rng, vendor.rate)
                for _ in range(count):
                    self.new_payment(vendor, day)
        for company in self.config.companies:
            amounts = sorted(float(p.amount) for p in self.payments if p.company is company)
            amounts = amounts or [company.typical_amount]
            self.median[company.code] = amounts[len(amounts) // 2]
            self.p95[company.code] = amounts[min(len(amounts) - 1, int(len(amounts) * 0.95))]

    # --- shared by the everyday mishaps and the injections --------------------------------------

    def space_ok(self, channel: str, instant: datetime) -> bool:
        return all(abs(instant - other) > FAILURE_SPACING for other in self.failure_times.get(channel, []))

    def note_failure(self, channel: str, instant: datetime) -> None:
        self.failure_times.setdefault(channel, []).append(instant)

    def pay_again(self, original: Payment, amount: Decimal, after: datetime | None = None) -> Payment | None:
        """The same invoice paid again after a failure or a cancellation (legitimately, not a duplicate)."""
        assert original.vendor is not None
        company = original.company
        day = add_business_days(local_day(company, after or original.outcome_at), self.rng.randint(1, 3))
        if day > self.last_day:
            return None
        again = self.new_payment(
            original.vendor, day, amount=amount, invoice_id=original.invoice_id, po_id=original.po_id,
            channel=original.channel, lead=0, add=False,
        )  # fmt: skip
        if not self.fits(original.vendor, again):
            return None
        self.payments.append(again)
        self.used.add(again.seq)
        return again

    # --- helpers for the injections ---------------------------------------------------------------

    def anchor_days(self, lookahead: int) -> list[date]:
        """Business days after the warm-up that leave `lookahead` business days before the end."""
        eligible = [d for d in self.bdays if d >= self.warm_from]
        roomy = [d for d in eligible if add_business_days(d, lookahead) <= self.last_day]
        return roomy or eligible

    def candidates(self, day: date, keep: Callable[[Payment], bool] | None = None) -> list[Payment]:
        """Untouched payments released on `day` (company-local) by established vendors whose master
        data stays put (no bank change, no rename, not onboarded or injected)."""
        out = []
        for p in self.payments:
            if not p.normal or p.seq in self.used or p.vendor is None or p.vendor.tags:
                continue
            released_on = self._released_on.get(p.seq)
            if released_on is None:
                released_on = self._released_on[p.seq] = local_day(p.company, p.released_at)
            if released_on != day or p.vendor.payable_from is not None:
                continue
            if local_day(p.company, p.created_at) < self.warm_from:  # drafted during the warm-up
                continue
            if keep is None or keep(p):
                out.append(p)
        return out

    def history(self, vendor: Vendor, before: datetime) -> int:
        """How many of the vendor's payments were released before `before` (its baseline so far)."""
        return sum(1 for p in self.payments if p.vendor is vendor and p.erp and p.released_at < before)

    def mark(self, payment: Payment, verdict: str, typology: str) -> None:
        payment.label = (verdict, typology)
        self.used.add(payment.seq)

    # --- output -----------------------------------------------------------------------------------

    def _assign_payment_ids(self) -> None:
        for company in self.config.companies:
            number = self.rng.randrange(1, 9) * 100_000
            mine = [p for p in self.payments if p.company is company]
            for p in sorted(mine, key=lambda p: (p.created_at if p.erp else p.submitted_at, p.seq)):
                number += 2 if self.rng.random() < 0.03 else 1  # number ranges have the odd gap
                p.payment_id = f"PAY-{company.code}-{number:06d}"

    def render(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self._assign_payment_ids()
        rows: list[tuple[datetime, int, SimulatedCompany, str, dict[str, Any]]] = []
        for instant, company, kind, fields in self.vendor_events:
            rows.append((instant, len(rows), company, kind, fields))
        labels: list[tuple[datetime, int, SimulatedCompany, str, dict[str, Any]]] = []
        for payment in sorted(self.payments, key=lambda p: p.seq):
            for instant, kind, fields in payment.events():
                rows.append((instant, len(rows), payment.company, kind, fields))
            if payment.label is not None:
                verdict, typology = payment.label
                day = add_business_days(local_day(payment.company, payment.last_event_at()), self.rng.randint(1, 4))
                at = self.office_time(payment.company, day)
                fields = {"payment_id": payment.payment_id, "company_code": payment.company.code}
                if payment.vendor is not None:
                    fields["vendor_id"] = payment.vendor.vendor_id
                fields |= {"verdict": verdict, "typology": typology, "labeled_by": self.rng.choice(RISK_USERS)}
                labels.append((at, len(labels), payment.company, "label.confirmed", fields))
        rows.sort(key=lambda row: (row[0], row[1]))
        labels.sort(key=lambda row: (row[0], row[1]))
        events = [
            {"type": kind, "event_id": f"sim-{i:06d}", "event_time": rfc3339(company, instant), **fields}
            for i, (instant, _, company, kind, fields) in enumerate(rows, start=1)
        ]
        label_events = [
            {"type": kind, "event_id": f"sim-L{i:05d}", "event_time": rfc3339(company, instant), **fields}
            for i, (instant, _, company, kind, fields) in enumerate(labels, start=1)
        ]
        return events, label_events
