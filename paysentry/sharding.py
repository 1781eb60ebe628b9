"""Which shard an event belongs to. State is sharded by paying company, so that everything a decision
reads (the company's vendors, users, accounts, channels and payments) lives on one partition.

A payment keeps the shard of its first event: a later event of the same payment lands on the same
shard even when it lacks a company code (platform events never carry one). Vendor master data is not
sharded: every shard reads it (a replicated table in the stream).
"""

from __future__ import annotations

from collections.abc import MutableMapping

from paysentry.contract import Event

UNKNOWN_SHARD = "_"


def shard_for(event: Event, routes: MutableMapping[str, str]) -> str:
    """The event's shard; remembers a payment's shard in `routes` (payment_id -> shard)."""
    payment_id = event.payment_id
    if payment_id:
        known = routes.get(payment_id)
        if known is not None:
            return known
    shard = event.company_code or UNKNOWN_SHARD
    if payment_id:
        routes[payment_id] = shard
    return shard
