"""Synthetic ERP payment stream with labelled, injected anomalies (`paysentry simulate`, `paysentry demo`).

What it produces, for `days` days from `start` (all of it a pure function of the config and its seed):

- A vendor master: `vendors` vendors split over the companies (default CN01 Asia/Shanghai CNY, US01
  America/New_York USD, DE01 Europe/Berlin EUR), each with a stable home bank account (IBANs with valid
  check digits in Europe, digit strings in China and the US), a country, channel habits (CN: cips /
  alipay / wechat_pay, US: ach / wire / check / card, DE: sepa, swift for non-SEPA vendors), a log-normal
  typical amount (a few big vendors, many small ones) and a payment frequency; some bill the same amount
  every week. A `vendor.created` snapshot of all of them just before the start, a few verified domestic
  bank-detail changes and renames (`vendor.updated`), and a few small vendors onboarded mid-period.
- Payments in payment runs on business days (Mon-Fri, two runs a day per company, ~5 % released manually
  in office hours): `payment.created` -> `payment.approved` (approvers are never the creator; two of them
  at or above the company's approval limit) -> `payment.released` (with `erp_batch` when in a run) ->
  `psp.submitted` -> `psp.settled` (channel fee in the company's currency) seconds to a day or two later.
  About 1.5 % are rejected (`psp.failed`) or come back (`psp.returned`) with a realistic reason, never
  clustered on a channel; half of those invoices are paid again days later with the same invoice id.
  A few are cancelled (`payment.cancelled`), some of them re-entered with a corrected amount.
- Injected incidents after the warm-up (`warmup_days`), each labelled with a `label.confirmed` event
  (verdict `fraud` or `error`, `typology`) a few business days later: duplicate_payment, bank_change_bec,
  shared_account, amount_outlier, split_payment, new_vendor_large, off_hours_release, self_approval,
  settlement_mismatch, orphan_settlement, unsettled_sla, channel_failure_spike (one label per anomalous
  payment; an orphan settlement's label names the payment id only the platform knows).

Every event time is RFC 3339 in the paying company's local offset (DST included); events are sorted by
instant, ties kept in generation order, and numbered `sim-000001`...; labels are `sim-L00001`....
Legitimate look-alikes are deliberate: weekly fixed amounts, same-invoice retries after a failure or a
cancellation, domestic bank changes, small new vendors. `normalise_invoice` is how invoice references
compare ("inv 88812" == "INV-0088812").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from paysentry.simulation import *  # noqa: F403  (this module is the simulator's public face)
from paysentry.simulation import SimulationConfig, anomalies, everyday
from paysentry.simulation import __all__ as _package_names
from paysentry.simulation.engine import Simulation

__all__ = [*_package_names, "simulate", "write_simulation"]


def simulate(config: SimulationConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(events, labels): contract event dicts sorted by event_time (ties broken stably), and one
    `label.confirmed` event per injected anomalous payment, sorted the same way."""
    sim = Simulation(config)
    sim.build_master()  # the vendor master as of the start, and its snapshot events
    sim.schedule()  # every business day's payment runs
    everyday.master_data_changes(sim)
    everyday.onboard_vendors(sim)
    anomalies.inject_all(sim)  # after the warm-up; each marks its payments with a label
    everyday.failures(sim)  # only payments no injection owns
    everyday.cancellations(sim)
    return sim.render()


def write_simulation(config: SimulationConfig, events_path: Path, labels_path: Path) -> tuple[int, int]:
    """Write events and labels as JSON Lines (one event per line); returns (events, labels) counts."""
    events, labels = simulate(config)
    for path, rows in ((Path(events_path), events), (Path(labels_path), labels)):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            out.writelines(orjson.dumps(row) + b"\n" for row in rows)
    return len(events), len(labels)
