"""Payment orders and their life: timing, platform fees and failure reasons, and the contract events."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from paysentry.simulation.config import SimulatedCompany
from paysentry.simulation.world import Account, Vendor, money

# Outcome of a payment order as far as the payment platform is concerned.
SETTLED, FAILED, RETURNED, CANCELLED, UNSETTLED = "settled", "failed", "returned", "cancelled", "unsettled"

# Seconds from submission to settlement, per channel (low, high).
SETTLE_DELAY: dict[str, tuple[int, int]] = {
    "alipay": (5, 600),
    "wechat_pay": (5, 600),
    "card": (60, 1800),
    "cips": (300, 3 * 3600),
    "wire": (900, 4 * 3600),
    "sepa": (3600, 20 * 3600),
    "ach": (4 * 3600, 24 * 3600),
    "swift": (2 * 3600, 30 * 3600),
    "check": (20 * 3600, 72 * 3600),
    "other": (600, 6 * 3600),
}

# Realistic rejection (failed) and return reasons per channel.
FAIL_REASONS: dict[str, tuple[str, ...]] = {
    "cips": ("beneficiary account name mismatch", "beneficiary bank rejected: account frozen"),
    "alipay": ("payee account not real-name verified", "payee account frozen by alipay risk control"),
    "wechat_pay": ("payee account not real-name verified", "single transfer limit exceeded for payee"),
    "ach": ("rejected by ODFI: invalid routing number", "R03 no account/unable to locate account"),
    "wire": ("beneficiary bank rejected: account closed", "beneficiary name does not match account"),
    "check": ("check voided: payee address undeliverable",),
    "card": ("virtual card declined: card expired",),
    "sepa": ("AC01 incorrect account number", "RC01 bank identifier incorrect", "AG01 transaction forbidden"),
    "swift": ("beneficiary bank rejected: invalid account", "intermediary bank compliance reject"),
    "other": ("rejected by payment platform",),
}
RETURN_REASONS: dict[str, tuple[str, ...]] = {
    "cips": ("returned by beneficiary bank: account closed",),
    "alipay": ("returned: payee account closed",),
    "wechat_pay": ("returned: payee did not accept within 24 h",),
    "ach": ("R02 account closed", "R04 invalid account number structure", "R16 account frozen"),
    "wire": ("returned by beneficiary bank: account closed",),
    "check": ("check returned: addressee unknown",),
    "card": ("refund: merchant account closed",),
    "sepa": ("AC04 closed account", "AC06 blocked account", "MD07 end customer deceased"),
    "swift": ("returned by correspondent: beneficiary account closed",),
    "other": ("returned by payment platform",),
}
# A platform or scheme outage fails many payments of one channel at once, all with the same reason.
OUTAGE_REASONS: dict[str, str] = {
    "cips": "CIPS: receiving participant not reachable (RJCT, system unavailable)",
    "alipay": "alipay gateway error: SYSTEM_ERROR, retry later",
    "wechat_pay": "wechat pay: SYSTEMERROR, system busy",
    "ach": "rejected by ODFI: file processing outage",
    "wire": "Fedwire: payment not accepted, participant connection down",
    "check": "check print service unavailable",
    "card": "card network timeout",
    "sepa": "MS03 reason not specified: CSM technical outage",
    "swift": "network rejection: correspondent bank unavailable",
    "other": "payment platform unavailable",
}
CANCEL_REASONS: tuple[str, ...] = (
    "invoice disputed by the business",
    "credit note received from vendor",
    "payment terms changed, rescheduled",
)
WRONG_AMOUNT = "entered with wrong amount, re-entered"


def _clamp(value: Decimal, low: str, high: str) -> Decimal:
    return min(max(value, Decimal(low)), Decimal(high))


def settlement_fee(channel: str, amount: Decimal, cross_border: bool) -> Decimal:
    """What the platform or bank charges the payer, in the company's currency."""
    if channel == "cips":
        fee = _clamp(amount * Decimal("0.0001"), "10", "150")
    elif channel == "alipay":
        fee = _clamp(amount * Decimal("0.001"), "0.10", "25")
    elif channel == "wechat_pay":
        fee = _clamp(amount * Decimal("0.001"), "1", "25")
    elif channel == "ach":
        fee = Decimal("0.30")
    elif channel == "wire":
        fee = Decimal("35.00") if cross_border else Decimal("18.00")
    elif channel == "check":
        fee = Decimal("1.85")
    elif channel == "card":
        fee = Decimal("0")
    elif channel == "sepa":
        fee = Decimal("0.25")
    elif channel == "swift":
        fee = _clamp(amount * Decimal("0.001"), "15", "75")
    else:
        fee = Decimal("5.00")
    return money(fee)


def return_fee(channel: str) -> Decimal:
    return {"ach": Decimal("3.00"), "sepa": Decimal("2.50"), "wire": Decimal("15.00"), "swift": Decimal("25.00")}.get(
        channel, Decimal("0.00")
    )


@dataclass
class Payment:
    seq: int
    company: SimulatedCompany
    vendor: Vendor | None  # None only for a settlement the ERP never saw
    amount: Decimal
    channel: str
    invoice_id: str
    po_id: str | None
    created_by: str
    approved_by: list[str]
    created_at: datetime
    approved_at: datetime | None
    released_at: datetime
    batch: str | None
    due_date: date
    submitted_at: datetime = field(init=False)
    outcome_at: datetime = field(init=False)
    outcome: str = SETTLED
    status_reason: str | None = None
    settled_amount: Decimal | None = None
    account_override: Account | None = None
    erp: bool = True
    psp_submitted: bool = True
    label: tuple[str, str] | None = None  # (verdict, typology)
    payment_id: str = ""

    @property
    def account(self) -> Account:
        if self.account_override is not None:
            return self.account_override
        assert self.vendor is not None
        return self.vendor.account_at(self.created_at)

    @property
    def normal(self) -> bool:
        """Untouched so far: no label, settles normally, known to the ERP."""
        return self.label is None and self.outcome == SETTLED and self.erp and self.settled_amount is None

    def schedule_platform(self, rng: random.Random) -> None:
        """Submission seconds after release, settlement as fast as the channel usually is."""
        self.submitted_at = self.released_at + timedelta(seconds=rng.randint(2, 90))
        low, high = SETTLE_DELAY.get(self.channel, SETTLE_DELAY["other"])
        self.outcome_at = self.submitted_at + timedelta(seconds=rng.randint(low, high))

    def last_event_at(self) -> datetime:
        return self.submitted_at if self.outcome == UNSETTLED else self.outcome_at

    # --- rendering to contract events ---

    def events(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        """(instant, type, fields) of every event this payment produces, in lifecycle order."""
        out: list[tuple[datetime, str, dict[str, Any]]] = []
        cc, ccy, amount = self.company.code, self.company.currency, str(self.amount)
        account = self.account
        if self.erp:
            assert self.vendor is not None
            vendor_id, name = self.vendor.vendor_id, self.vendor.name_at(self.created_at)
            order: dict[str, Any] = {
                "payment_id": self.payment_id,
                "company_code": cc,
                "vendor_id": vendor_id,
                "vendor_name": name,
                "invoice_id": self.invoice_id,
                **({"po_id": self.po_id} if self.po_id else {}),
                "amount": amount,
                "currency": ccy,
                "channel": self.channel,
                "payee_account": account.number,
                "payee_bank": account.bank,
                "payee_country": account.country,
                "created_by": self.created_by,
                "due_date": self.due_date.isoformat(),
            }
            out.append((self.created_at, "payment.created", order))
            short = {"payment_id": self.payment_id, "company_code": cc, "vendor_id": vendor_id}
            if self.approved_at is not None:
                approval = {**short, "amount": amount, "currency": ccy, "approved_by": list(self.approved_by)}
                out.append((self.approved_at, "payment.approved", approval))
            if self.outcome == CANCELLED:
                cancel = {**short, "amount": amount, "currency": ccy, "status_reason": self.status_reason}
                out.append((self.outcome_at, "payment.cancelled", {**cancel, "changed_by": self.created_by}))
                return out
            release = {**order, "approved_by": list(self.approved_by)}
            if self.batch:
                release["erp_batch"] = self.batch
            out.append((self.released_at, "payment.released", release))
        psp = {"payment_id": self.payment_id, "company_code": cc, "amount": amount, "currency": ccy}
        psp["channel"] = self.channel
        if self.psp_submitted:
            out.append((self.submitted_at, "psp.submitted", dict(psp)))
        if self.outcome == UNSETTLED:
            return out
        if self.outcome == SETTLED:
            settled_amount = self.settled_amount if self.settled_amount is not None else self.amount
            cross_border = account.country != self.company.country
            fee = settlement_fee(self.channel, settled_amount, cross_border)
            settled = {**psp, "amount": str(settled_amount), "fee": str(fee), "fee_currency": ccy}
            out.append((self.outcome_at, "psp.settled", {**settled, "payee_account": account.number}))
        else:
            fee = return_fee(self.channel) if self.outcome == RETURNED else Decimal("0.00")
            end = {**psp, "status_reason": self.status_reason, "fee": str(fee), "fee_currency": ccy}
            out.append((self.outcome_at, f"psp.{self.outcome}", end))
        return out
