"""A small card-like stream for the learning tests and the learner comparison.

One card portfolio (company CARD, open 24/7) where payers (the creating user) pay payees (the vendor and
its account). Frauds: payees compromised for four weeks (every payment to them), payers compromised for
two weeks (a third of their payments, five times larger), and plain large amounts. Each fraud is confirmed by a
`label.confirmed` event a week after the payment; legitimate payments get no verdict.

    .venv/bin/python -m tests.learning.cardlike [--weeks 9] [--payers 600]

compares the online logistic regression with the adaptive random forest on the last week.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

START = datetime(2026, 1, 5, tzinfo=UTC)
LABEL_DELAY = timedelta(days=7)


@dataclass(frozen=True)
class CardConfig:
    weeks: int = 9
    payers: int = 600
    payees: int = 120
    payments_per_payer_day: float = 0.4
    compromised_payees_per_week: int = 1
    compromised_payers_per_week: int = 6
    large_amount: float = 600.0
    seed: int = 5


def generate(config: CardConfig) -> list[dict[str, Any]]:
    """Events and labels, in event-time order."""
    rng = random.Random(config.seed)
    favourites = {p: rng.sample(range(config.payees), 6) for p in range(config.payers)}
    typical = {m: rng.uniform(20, 150) for m in range(config.payees)}
    bad_payees: dict[int, tuple[int, int]] = {}  # payee -> (first day, last day)
    bad_payers: dict[int, tuple[int, int]] = {}
    rows: list[dict[str, Any]] = []
    serial = 0
    for day in range(config.weeks * 7):
        if day % 7 == 0:
            for m in rng.sample(range(config.payees), config.compromised_payees_per_week):
                bad_payees[m] = (day, day + 28)
            for p in rng.sample(range(config.payers), config.compromised_payers_per_week):
                bad_payers[p] = (day, day + 14)
        for payer in range(config.payers):
            for _ in range(_poisson(rng, config.payments_per_payer_day)):
                serial += 1
                payee = rng.choice(favourites[payer]) if rng.random() < 0.9 else rng.randrange(config.payees)
                amount = rng.lognormvariate(0, 0.5) * typical[payee]
                fraud = amount >= config.large_amount
                first, last = bad_payees.get(payee, (-1, -2))
                if first <= day <= last:
                    fraud = True
                first, last = bad_payers.get(payer, (-1, -2))
                if first <= day <= last and rng.random() < 1 / 3:
                    fraud, amount = True, amount * 5
                moment = START + timedelta(days=day, seconds=rng.randrange(86400))
                payment_id = f"CP-{serial:07d}"
                rows.append({
                    "type": "payment.released", "event_id": f"e-{payment_id}", "event_time": moment.isoformat(),
                    "payment_id": payment_id, "company_code": "CARD", "vendor_id": f"M{payee:04d}",
                    "amount": f"{amount:.2f}", "currency": "USD", "channel": "card",
                    "payee_account": f"ACCT{payee:08d}", "created_by": f"c-{payer:05d}",
                })  # fmt: skip
                if fraud:
                    rows.append({"type": "label.confirmed", "event_id": f"l-{payment_id}",
                                 "event_time": (moment + LABEL_DELAY).isoformat(), "payment_id": payment_id,
                                 "verdict": "fraud", "typology": "card_fraud"})  # fmt: skip
    rows.sort(key=lambda r: r["event_time"])
    return rows


def _poisson(rng: random.Random, mean: float) -> int:
    count, threshold, product = 0, pow(2.718281828459045, -mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def write(config: CardConfig, path: Path) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in generate(config)))
    return path


def main() -> None:
    from models.learning import events_of, train

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weeks", type=int, default=9)
    parser.add_argument("--payers", type=int, default=600)
    args = parser.parse_args()
    config = CardConfig(weeks=args.weeks, payers=args.payers)
    path = write(config, Path("/tmp/cardlike.jsonl"))
    test_from = int((START + timedelta(weeks=config.weeks - 1)).timestamp())
    for kind in ("logistic", "forest"):
        started = time.perf_counter()
        learner, scores = train(events_of(path), kind=kind, test_from=test_from)
        took = time.perf_counter() - started
        print(f"{kind:9s} payments {scores.scored:6d} frauds {scores.frauds:4d} ROC AUC {scores.roc_auc:.3f} "
              f"AP {scores.average_precision:.3f} ({took:.0f} s, {learner.learned} learnt)")  # fmt: skip


if __name__ == "__main__":
    main()
