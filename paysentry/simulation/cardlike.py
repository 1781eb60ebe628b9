"""A card-like payment stream with delayed verdicts (`paysentry simulate-card`): many payers paying many
payees at every hour of the day, with three kinds of fraud and the investigators' verdicts a week late.

Mapped onto the event contract so that the engine's per-company state sees a whole portfolio:

- a company code is a card portfolio (`CARD1`, `CARD2`, ...): every payer belongs to one, and state is
  sharded by it, so a payee's history covers all of the portfolio's payers;
- the payer (card holder) is `created_by` (`H000123`), the payee (merchant) is `vendor_id`
  (`M00042`) with its own settlement account (`payee_account`), registered by `vendor.created` events
  before the start;
- each payment is a `payment.released` on channel `card` and, seconds to minutes later, its
  `psp.settled` (so no settlement timer fires); there is no approval step.

Fraud (each labelled `fraud` with its typology, by a `label.confirmed` event `label_delay_days` to one
day more after the payment):

- `large_amount`: any payment above `large_amount`;
- `compromised_payee`: every so often a payee is compromised for `payee_fraud_days`: every payment to
  it in that time is fraudulent;
- `compromised_payer`: every day a few payers' cards are compromised for `payer_fraud_days`: about a
  third of their payments in that time are fraudulent and `payer_fraud_factor` times their usual size.

Everything is a pure function of the config and its seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

DAY = 86400


@dataclass(frozen=True)
class CardConfig:
    days: int = 63
    seed: int = 7
    start: date = date(2026, 9, 1)
    payers: int = 1000
    payees: int = 400
    portfolios: int = 2
    currency: str = "EUR"
    payments_per_payer_day: float = 1.5  # mean; each payer draws its own rate around it
    payees_per_payer: int = 40
    large_amount: float = 220.0
    compromised_payees_per_week: float = 1.0
    payee_fraud_days: int = 28
    compromised_payers_per_day: float = 2.0
    payer_fraud_days: int = 14
    payer_fraud_share: float = 1 / 3
    payer_fraud_factor: float = 5.0
    label_delay_days: float = 7.0

    def __post_init__(self) -> None:
        if self.days < 1 or self.payers < 1 or self.payees < 2 or self.portfolios < 1:
            raise ValueError("days, payers and portfolios must be at least 1, payees at least 2")
        if self.payments_per_payer_day <= 0 or self.large_amount <= 0 or self.payer_fraud_factor < 1:
            raise ValueError("rates and amounts must be positive, payer_fraud_factor at least 1")
        if self.label_delay_days < 0 or not 0 <= self.payer_fraud_share <= 1:
            raise ValueError("label_delay_days must not be negative, payer_fraud_share in [0, 1]")


@dataclass(frozen=True, slots=True)
class _Payer:
    payer_id: str
    portfolio: str
    mean: float
    spread: float
    rate: float
    payees: tuple[int, ...]


def _account(rng: random.Random) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(12))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: means here are a few per day
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _fraud_periods(rng: random.Random, days: int, per_day: float, population: int, length: int) -> dict[int, int]:
    """member index -> first day (index) of its compromised period, drawn day by day."""
    periods: dict[int, int] = {}
    for day in range(days):
        for _ in range(_poisson(rng, per_day)):
            member = rng.randrange(population)
            if member not in periods or day >= periods[member] + length:
                periods[member] = day
    return periods


def card_stream(config: CardConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(events, labels): contract event dicts sorted by event time, and one `label.confirmed` per
    fraudulent payment, sorted by its (later) event time."""
    rng = random.Random(config.seed)
    origin = datetime(config.start.year, config.start.month, config.start.day, tzinfo=UTC)
    portfolios = [f"CARD{i + 1}" for i in range(config.portfolios)]
    payee_ids = [f"M{i:05d}" for i in range(config.payees)]
    accounts = [_account(rng) for _ in payee_ids]
    rows: list[tuple[datetime, int, dict[str, Any]]] = []
    for index, payee_id in enumerate(payee_ids):
        at = origin - timedelta(days=rng.randint(30, 900), seconds=index)
        rows.append((at, len(rows), {
            "type": "vendor.created", "vendor_id": payee_id, "vendor_name": f"Merchant {payee_id}",
            "payee_account": accounts[index], "payee_country": "DE", "currency": config.currency,
            "channel": "card", "changed_by": "onboarding",
        }))  # fmt: skip
    payers = []
    for index in range(config.payers):
        mean = rng.uniform(5.0, 100.0)
        picks = tuple(rng.sample(range(config.payees), min(config.payees_per_payer, config.payees)))
        rate = rng.uniform(0.0, 2.0 * config.payments_per_payer_day)
        payers.append(_Payer(f"H{index:06d}", rng.choice(portfolios), mean, mean / 2, rate, picks))
    bad_payees = _fraud_periods(rng, config.days, config.compromised_payees_per_week / 7, config.payees,
                                config.payee_fraud_days)  # fmt: skip
    bad_payers = _fraud_periods(rng, config.days, config.compromised_payers_per_day, config.payers,
                                config.payer_fraud_days)  # fmt: skip
    labels: list[tuple[datetime, int, dict[str, Any]]] = []
    number = 0
    for day in range(config.days):
        midnight = origin + timedelta(days=day)
        for index, payer in enumerate(payers):
            for _ in range(_poisson(rng, payer.rate)):
                # every hour of the day, most of them in the daytime
                seconds = int(rng.gauss(DAY / 2, DAY / 5)) % DAY
                at = midnight + timedelta(seconds=seconds)
                payee = payer.payees[rng.randrange(len(payer.payees))]
                amount = max(0.5, rng.gauss(payer.mean, payer.spread))
                typology = None
                since = bad_payers.get(index)
                in_period = since is not None and since <= day < since + config.payer_fraud_days
                if in_period and rng.random() < config.payer_fraud_share:
                    amount, typology = amount * config.payer_fraud_factor, "compromised_payer"
                since = bad_payees.get(payee)
                if since is not None and since <= day < since + config.payee_fraud_days:
                    typology = "compromised_payee"
                if amount > config.large_amount:
                    typology = typology or "large_amount"
                number += 1
                payment_id = f"CP-{number:08d}"
                money = f"{amount:.2f}"
                rows.append((at, len(rows), {
                    "type": "payment.released", "payment_id": payment_id, "company_code": payer.portfolio,
                    "vendor_id": payee_ids[payee], "amount": money, "currency": config.currency,
                    "channel": "card", "created_by": payer.payer_id, "invoice_id": payment_id,
                    "payee_account": accounts[payee], "payee_country": "DE",
                }))  # fmt: skip
                settled = at + timedelta(seconds=rng.randint(5, 900))
                rows.append((settled, len(rows), {
                    "type": "psp.settled", "payment_id": payment_id, "amount": money,
                    "currency": config.currency, "channel": "card", "fee": f"{amount * 0.012:.2f}",
                }))  # fmt: skip
                if typology is not None:
                    known = at + timedelta(days=config.label_delay_days, seconds=rng.randint(0, DAY))
                    labels.append((known, len(labels), {
                        "type": "label.confirmed", "payment_id": payment_id, "company_code": payer.portfolio,
                        "vendor_id": payee_ids[payee], "verdict": "fraud", "typology": typology,
                        "labeled_by": "investigations",
                    }))  # fmt: skip
    rows.sort(key=lambda row: (row[0], row[1]))
    labels.sort(key=lambda row: (row[0], row[1]))
    events = [{**fields, "event_id": f"card-{i:08d}", "event_time": _iso(at)}
              for i, (at, _, fields) in enumerate(rows, start=1)]  # fmt: skip
    label_events = [{**fields, "event_id": f"card-L{i:07d}", "event_time": _iso(at)}
                    for i, (at, _, fields) in enumerate(labels, start=1)]  # fmt: skip
    return events, label_events


def write_card_stream(config: CardConfig, events_path: Path, labels_path: Path) -> tuple[int, int]:
    """Write events and labels as JSON Lines; returns (events, labels) counts."""
    events, labels = card_stream(config)
    for path, items in ((events_path, events), (labels_path, labels)):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            out.writelines(orjson.dumps(item) + b"\n" for item in items)
    return len(events), len(labels)
