"""The decision core: event + state -> decision + new state. Plain, synchronous, deterministic.

Every shell (the Faust agents, `paysentry replay`, notebooks, tests) calls `Engine.process` with a
parsed event and a `StateStore`. The engine reads the entities the event touches, computes features,
asks the rules and the model, builds the decision, and writes each touched entity back exactly once.
Redelivered events change nothing and decide nothing. A redelivery is the same `event_id` with the
same `type` for the same payment: the contract makes event ids unique per event, so an event of another
type that reuses an id is a different event (e.g. a release sent with its creation's id) and is scored.
`Engine.counts` counts what produced no decision (redeliveries, state-only label.* and vendor.* events)
and the timers' decisions, so a shell can check that every input is accounted for.

The only clock is event time; timers (`check_timers`) are driven by the shell with an event-time "now".
State expires by event time too: an entity idle past its horizon reads as absent (see
`paysentry.state`), so a sweep that deletes it changes nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from mypy_extensions import mypyc_attr

from models.features import FeatureInputs, compute_features, record_or_event
from models.label_features import label_features, record_confirmed_fraud
from models.scorer import CalibratedHalfSpaceTrees
from models.scoring import NOT_SCORED, PaymentScores, explained_labels, score_payment, scored_event
from models.serving import ServedModels, served_from_environment
from models.supervised import OnlineLearner
from paysentry.contract import Decision, Event, RuleHit, action_rank, severity_rank
from paysentry.event_time import epoch, utc_from_epoch
from paysentry.invoices import normalise_invoice
from paysentry.money import cents, convert, to_base
from paysentry.params import CompanyParams
from paysentry.ports import RuleContext, RulesetLike
from paysentry.sharding import UNKNOWN_SHARD
from paysentry.state import (
    AccountMaster,
    AccountProfile,
    ChannelProfile,
    CompanyProfile,
    Entity,
    PaymentRecord,
    UserProfile,
    VendorMaster,
    VendorProfile,
)
from paysentry.windows import HOUR

SEVERITY_WEIGHT = {"info": 0.05, "low": 0.2, "medium": 0.45, "high": 0.7, "critical": 0.9}
MODEL_WEIGHT = 0.5  # the anomaly model alone lifts a payment to at most 0.5: enough to rank, not to block
# The promoted supervised model counts in full: its score is a probability of fraud, and the same in
# the stream and in replay, so it may act (rules on model_score) and rank.
SUPERVISED_WEIGHT = 1.0
ANOMALY_WEIGHT_BESIDE_SUPERVISED = 0.0  # see combined_risk
# Engine(models=FROM_ENVIRONMENT): the registry PAYSENTRY_MODEL_REGISTRY names (models.serving)
FROM_ENVIRONMENT: Literal["environment"] = "environment"
NEAR_LIMIT_FLOOR = Decimal("0.9")  # a payment from 90 % of the approval limit up counts as near it
FAILURES = ("psp.failed", "psp.returned")
UNMATCHED_GRACE = HOUR  # platform events may arrive before the ERP's; wait this long before flagging
EXPLAINED_FEATURES = (
    "amount_base", "amount_zscore_30d", "amount_ratio_median_30d", "vendor_amount_median_30d",
    "vendor_payment_count_30d", "vendor_count_24h", "days_since_bank_change", "vendor_age_days",
    "account_new_for_vendor", "account_shared", "hour_local", "is_weekend", "amount_to_limit_ratio",
    "settled_amount_diff", "hours_since_release", "channel_failures_1h",
)  # fmt: skip


class StateStore(Protocol):
    def get(self, key: str) -> Entity | None: ...

    def __setitem__(self, key: str, value: Entity) -> None: ...


# Tests subclass these (a rule set or an engine of their own); a mypyc build (scripts/build_compiled.py)
# refuses that unless told.
@mypyc_attr(allow_interpreted_subclasses=True)
class EmptyRuleset:
    """No rules: every payment is allowed unless the model says otherwise (used by model-only runs)."""

    version = "empty"

    def company(self, company_code: str | None) -> CompanyParams:
        return CompanyParams()

    def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
        return [], []


@dataclass
class _Touched:
    """The entities one event reads, written back once at the end (master data is read-only here)."""

    store: StateStore
    shard: str
    master: StateStore
    at: int  # event time of the read: what has been idle past its horizon by then reads as absent
    expired: Callable[[Entity, int], bool]
    loaded: dict[str, Entity] = field(default_factory=dict)
    writes_master: bool = False

    def get(self, cls: type[Entity], entity_id: str | None, create: bool = True) -> Any:
        if not entity_id:
            return None
        sharded = cls.sharded
        key = f"{self.shard}/{cls.prefix}:{entity_id}" if sharded else f"{cls.prefix}:{entity_id}"  # key_for
        entity = self.loaded.get(key)
        if entity is not None:
            return entity
        entity = (self.store if sharded else self.master).get(key)
        if entity is not None:
            # the common case inline: written within its horizon (or never expiring) reads as present
            memory, touched_at = entity.memory, entity.touched_at
            idle = memory is not None and (touched_at is None or self.at > touched_at + memory)
            if idle and self.expired(entity, self.at):
                entity = None
        if entity is None:
            if not create:
                return None
            entity = cls()
        if sharded or self.writes_master:
            self.loaded[key] = entity
        return entity

    def write_back(self) -> None:
        for key, entity in self.loaded.items():
            entity.touch(self.at)
            (self.store if type(entity).sharded else self.master)[key] = entity


def combined_risk(hits: Iterable[RuleHit], model_score: float | None, supervised: float | None = None) -> float:
    """Noisy-OR of rule severities, the anomaly score (`model_score`) and the promoted supervised
    model's score, so more and stronger evidence ranks higher."""
    keep = 1.0
    for hit in hits:
        keep *= 1.0 - SEVERITY_WEIGHT[hit.severity]
    if model_score is not None:
        # Beside a promoted model trained on verdicts, the label-free anomaly score only adds noise to the
        # ranking (measured on the card-like stream: ROC AUC 0.84 with it at 0.1, against the model's 0.88
        # alone); it stays in the explanation.
        weight = MODEL_WEIGHT if supervised is None else ANOMALY_WEIGHT_BESIDE_SUPERVISED
        keep *= 1.0 - weight * model_score
    if supervised is not None:
        keep *= 1.0 - SUPERVISED_WEIGHT * supervised
    return round(1.0 - keep, 6)


def _shown_features(features: dict[str, Any]) -> dict[str, Any]:
    """The explained features that are present, floats rounded to 4 places (not finite: None)."""
    shown: dict[str, Any] = {}
    get = features.get
    for name in EXPLAINED_FEATURES:
        value = get(name)
        if value is None:
            continue
        if isinstance(value, float):
            value = round(value, 4) if math.isfinite(value) else None
        shown[name] = value
    return shown


FeatureSink = Callable[[str, str, dict[str, Any]], None]


@mypyc_attr(allow_interpreted_subclasses=True)
class Engine:
    def __init__(
        self,
        ruleset: RulesetLike | None = None,
        model: CalibratedHalfSpaceTrees | None = None,
        feature_sink: FeatureSink | None = None,
        *,
        models: ServedModels | Literal["environment"] | None = FROM_ENVIRONMENT,
        learner: OnlineLearner | Literal["default"] | None = "default",
    ):
        self.ruleset: RulesetLike = ruleset or EmptyRuleset()
        self.model = model if model is not None else CalibratedHalfSpaceTrees()
        # The registered models that may act (model_score), chosen by event time; by default those of
        # the registry in PAYSENTRY_MODEL_REGISTRY, so replay, backtests and workers serve the same.
        self.models: ServedModels | None = served_from_environment() if isinstance(models, str) else models
        # The online candidate: learns from verdicts, explains (candidate_score), never acts.
        self.learner: OnlineLearner | None = OnlineLearner.from_environment() if isinstance(learner, str) else learner
        # Notebooks and training read the exact features the stream decides on through this hook.
        self.feature_sink = feature_sink
        # redelivered / state_only: events that decide nothing; decided: events that did; timer: timer decisions
        self.counts: Counter[str] = Counter()

    # -- inbound events --------------------------------------------------------------------------
    def apply_master(self, event: Event, master: StateStore) -> None:
        """Apply a vendor.* event to the master data that every shard reads."""
        touched = _Touched(master, UNKNOWN_SHARD, master, epoch(event.event_time), self.expired, writes_master=True)
        if self._apply_vendor_event(event, touched):
            self.counts["state_only"] += 1
        else:
            self.counts["redelivered"] += 1
        touched.write_back()

    def process(
        self, event: Event, store: StateStore, *, shard: str = UNKNOWN_SHARD, master: StateStore | None = None
    ) -> Decision | None:
        """Apply one event to its shard's state; return its decision (payment.*, psp.*) or None.
        `master` is the vendor master data (defaults to `store`, as in the embedded run)."""
        master = store if master is None else master
        if event.family == "vendor":
            self.apply_master(event, master)
            return None
        at = epoch(event.event_time)
        touched = _Touched(store, shard, master, at, self.expired)
        record: PaymentRecord = touched.get(PaymentRecord, event.payment_id)
        if not record.remember(redelivery_key(event)):
            self.counts["redelivered"] += 1
            return None  # a redelivery: already applied and decided
        record.payment_id = event.payment_id
        if event.type == "label.confirmed":
            self._apply_label(event, record, touched, at)
            touched.write_back()
            self.counts["state_only"] += 1
            return None
        decision, scores = self._decide(event.type, event, record, touched, at)
        self._apply_payment_event(event, record, touched, at, decision, scores)
        touched.write_back()
        self.counts["decided"] += 1
        return decision

    def process_batch(
        self, events: Iterable[tuple[Event, str]], store: StateStore, master: StateStore | None = None
    ) -> list[Decision]:
        """Micro-batches of (event, shard) give the same decisions as one event at a time, in order."""
        decisions = (self.process(event, store, shard=shard, master=master) for event, shard in events)
        return [d for d in decisions if d is not None]

    # -- timers ----------------------------------------------------------------------------------
    def due_at(self, record: PaymentRecord) -> int | None:
        """When this payment next needs a timer check, in epoch seconds (None: nothing pending)."""
        if record.released_at is not None and not record.sla_flagged and record.status in ("released", "submitted"):
            sla = self.ruleset.company(record.company_code).settlement_sla_hours
            return record.released_at + int(sla * HOUR)
        if record.platform_first_at is not None and not record.erp_known and not record.unmatched_flagged:
            return record.platform_first_at + UNMATCHED_GRACE
        return None

    def expired(self, entity: Entity, now: int) -> bool:
        """True if `entity` reads as absent at event time `now`: idle past its horizon, and (for a
        payment) with no timer pending. Sweeps delete exactly these."""
        if not entity.idle_past(now):
            return False
        return not isinstance(entity, PaymentRecord) or self.due_at(entity) is None

    def check_timers(
        self,
        payment_ids: Iterable[str],
        now: int,
        store: StateStore,
        *,
        shard: str = UNKNOWN_SHARD,
        master: StateStore | None = None,
    ) -> list[Decision]:
        """Decisions for payments whose settlement SLA ran out or whose platform events never matched
        an ERP payment by event time `now`. Each is raised once per payment."""
        decisions = []
        for payment_id in payment_ids:
            touched = _Touched(store, shard, store if master is None else master, now, self.expired)
            record: PaymentRecord | None = touched.get(PaymentRecord, payment_id, create=False)
            if record is None:
                continue
            due = self.due_at(record)
            if due is None or due > now:
                continue
            if record.released_at is not None and record.status in ("released", "submitted"):
                record.sla_flagged = True
                kind = "sla.unsettled"
            else:
                record.unmatched_flagged = True
                kind = "psp.unmatched"
            decisions.append(self._decide(kind, None, record, touched, due)[0])
            touched.write_back()
            self.counts["timer"] += 1
        return decisions

    # -- the decision ----------------------------------------------------------------------------
    def _decide(
        self, event_type: str, event: Event | None, record: PaymentRecord, touched: _Touched, at: int
    ) -> tuple[Decision, PaymentScores]:
        # One ruleset for the whole decision, even if a hot reload swaps it meanwhile.
        ruleset: RulesetLike = getattr(self.ruleset, "current", self.ruleset)
        vendor_id = record.vendor_id or (event.vendor_id if event else None)
        company_code = record.company_code or (event.company_code if event else None)
        company = ruleset.company(company_code)
        created_by = (event.created_by if event else None) or record.created_by
        channel = (event.channel if event else None) or record.channel
        account_hash = event.payee_account_hash if event else None
        vendor = touched.get(VendorProfile, vendor_id, create=False)
        vendor_master = touched.get(VendorMaster, vendor_id, create=False)
        account = touched.get(AccountProfile, account_hash, create=False)
        account_master = touched.get(AccountMaster, account_hash, create=False)
        creator = touched.get(UserProfile, created_by, create=False)
        channel_profile = touched.get(ChannelProfile, channel, create=False)
        moment = event.event_time if event else _moment(at)
        features = compute_features(FeatureInputs(
            event_type, event, at, moment, company, record, vendor, account, creator, channel_profile,
            vendor_master, account_master))  # fmt: skip
        profiles: dict[str, Any] = {"vendor": vendor, "account": account, "creator": creator,
                                    "channel": channel_profile,
                                    "company": touched.get(CompanyProfile, company_code, create=False)}  # fmt: skip
        features.update(label_features(profiles, at))
        scores = NOT_SCORED
        if scored_event(event_type):
            scores = score_payment(
                features, at, self.model, self.models, self.learner, keep_inputs=event_type == "payment.released"
            )

        def window(entity: str, stat: str, seconds: int) -> float:
            profile = profiles.get(entity)
            return profile.stats.stat(stat, at, seconds) if profile is not None else 0.0

        if self.feature_sink is not None:
            self.feature_sink(event_type, record.payment_id or "", features)
        ctx = RuleContext(event_type, event, features, window, company)
        hits, shadow = ruleset.evaluate(ctx)
        model_score = scores.anomaly  # the decision's model_score field stays the anomaly score
        action: Any = max((h.action for h in hits), key=action_rank, default="allow")
        severity = max((h.severity for h in hits), key=severity_rank, default=None)
        shown = _shown_features(features)
        shown.update(explained_labels(features))
        explanation: dict[str, Any] = {"features": shown, "payment": _payment_summary(event, record)}
        if scores is not NOT_SCORED:
            explanation["models"] = scores.explanation()  # which registered model scored it, and every score
        if channel_profile is not None and event_type in FAILURES and action_rank(action) >= action_rank("review"):
            # a flagged failure names the channel's earlier ones, which failed before anything could flag
            earlier = channel_profile.failures_before(at, record.payment_id)
            if earlier:
                explanation["channel_incident"] = {"channel": channel, "earlier_failures": earlier}
        payment_id = record_or_event(record, event, "payment_id")
        # Every value is built here from checked parts (the event, the rules' hits): constructed, not
        # validated again field by field.
        decision = Decision.from_checked({
            "payment_id": payment_id,
            "event_id": event.event_id if event else f"{event_type}:{payment_id}",
            "event_time": moment.isoformat(),
            "event_type": event_type,
            "vendor_id": vendor_id,
            "company_code": company_code,
            "action": action,
            "risk_score": combined_risk(hits, model_score, scores.model),
            "severity": severity,
            "rule_hits": hits,
            "shadow_hits": shadow,
            "model_score": None if model_score is None else round(model_score, 6),
            "explanation": explanation,
            "ruleset_version": ruleset.version,
            "model_version": self.model.version,
        })  # fmt: skip
        return decision, scores

    # -- state updates ---------------------------------------------------------------------------
    def _apply_label(self, event: Event, record: PaymentRecord, touched: _Touched, at: int) -> None:
        """A verdict: counted in the label features from its own event time on (once per payment), and
        taught to the online learner."""
        if event.verdict == "fraud" and not record.fraud_counted:
            record.fraud_counted = True
            owners = ((VendorProfile, record.vendor_id), (AccountProfile, record.payee_account_hash),
                      (CompanyProfile, record.company_code), (UserProfile, record.created_by))  # fmt: skip
            record_confirmed_fraud([touched.get(cls, entity_id) for cls, entity_id in owners], at)
        record.label, record.typology = event.verdict, event.typology
        if self.learner is not None and record.payment_id:
            self.learner.verdict(record.payment_id, event.verdict, at)

    def _apply_vendor_event(self, event: Event, touched: _Touched) -> bool:
        """Apply a vendor.* event to the master data; False if it was a redelivery."""
        vendor: VendorMaster = touched.get(VendorMaster, event.vendor_id)
        if not vendor.remember(redelivery_key(event)):
            return False
        at = epoch(event.event_time)
        if event.type == "vendor.created" and (vendor.created_at is None or at < vendor.created_at):
            vendor.created_at = at
        if vendor.first_seen is None or at < vendor.first_seen:
            vendor.first_seen = at
        new_account = event.payee_account_hash
        if new_account:
            if vendor.master_account is not None and new_account != vendor.master_account:
                vendor.last_bank_change = max(at, vendor.last_bank_change or at)
            vendor.master_account, vendor.master_masked = new_account, event.payee_account_masked
            vendor.add_account(new_account, at)
            account: AccountMaster = touched.get(AccountMaster, new_account)
            account.first_seen = min(at, account.first_seen or at)
            account.add_vendor(event.vendor_id or "", at)
        return True

    def _apply_payment_event(
        self,
        event: Event,
        record: PaymentRecord,
        touched: _Touched,
        at: int,
        decision: Decision,
        scores: PaymentScores,
    ) -> None:
        if event.family == "payment":
            self._apply_erp_event(event, record, touched, at, decision, scores)
        else:
            self._apply_platform_event(event, record, touched, at)

    def _apply_erp_event(
        self,
        event: Event,
        record: PaymentRecord,
        touched: _Touched,
        at: int,
        decision: Decision,
        scores: PaymentScores,
    ) -> None:
        for name in ("vendor_id", "company_code", "currency", "channel", "created_by",
                     "payee_account_hash", "payee_account_masked"):  # fmt: skip
            value = getattr(event, name)
            if value is not None:
                setattr(record, name, value)
        if event.approved_by:
            record.approved_by = list(event.approved_by)
        if event.amount is not None:
            record.amount = str(event.amount)
        if event.invoice_id:
            record.invoice_norm = normalise_invoice(event.invoice_id)
        vendor: VendorProfile = touched.get(VendorProfile, record.vendor_id)
        if vendor.first_seen is None:
            vendor.first_seen = at
        if record.invoice_norm and record.amount and event.type != "payment.cancelled":
            registered = vendor.invoices.get(record.invoice_norm)
            # The first live payment of an invoice stays registered, so every later copy is compared with it.
            if registered is None or registered[2] == event.payment_id:
                vendor.add_invoice(record.invoice_norm, record.amount, at, event.payment_id or "")
        if event.type == "payment.created":
            record.created_at = record.created_at or at
        elif event.type == "payment.cancelled":
            if record.invoice_norm and vendor.invoices.get(record.invoice_norm, [None] * 3)[2] == event.payment_id:
                del vendor.invoices[record.invoice_norm]
        elif event.type == "payment.released" and record.released_at is None:
            record.released_at = at
            record.released_amount = str(event.amount)
            record.released_currency = event.currency
            self._count_release(event, record, vendor, touched, at)
            if decision.action == "allow" and scores.anomaly_x is not None:
                # Learn only from payments the rules let through, so fraud does not become "normal".
                self.model.learn_one(scores.anomaly_x)
            if self.learner is not None and scores.supervised_x is not None and event.payment_id:
                self.learner.remember(event.payment_id, at, scores.supervised_x)
        if record.status not in ("settled", "failed", "returned") or event.type == "payment.cancelled":
            record.status = event.type.split(".", 1)[1]

    def _count_release(
        self, event: Event, record: PaymentRecord, vendor: VendorProfile, touched: _Touched, at: int
    ) -> None:
        """A payment enters the rolling aggregates once, when the money is released."""
        assert event.amount is not None
        record.counted = True
        base = cents(to_base(event.amount, event.currency))
        vendor.stats.add(at, base)
        vendor.last_paid = max(at, vendor.last_paid or at)
        company = self.ruleset.company(record.company_code)
        if company.approval_limit is not None:
            limit = convert(company.approval_limit, company.currency, event.currency)
            if NEAR_LIMIT_FLOOR * limit <= event.amount < limit:
                vendor.near_limit.add(at, cents(event.amount))
        for cls, entity_id in ((CompanyProfile, record.company_code), (UserProfile, record.created_by)):
            profile = touched.get(cls, entity_id)
            if profile is not None:
                profile.stats.add(at, base)
                profile.first_seen = min(at, profile.first_seen or at)
                profile.last_seen = max(at, profile.last_seen or at)
        if record.payee_account_hash:
            account: AccountProfile = touched.get(AccountProfile, record.payee_account_hash)
            account.stats.add(at, base)
            account.first_seen = min(at, account.first_seen or at)
            account.last_seen = max(at, account.last_seen or at)
            account.add_vendor(record.vendor_id or "", at)
            vendor.add_account(record.payee_account_hash, at)

    def _apply_platform_event(self, event: Event, record: PaymentRecord, touched: _Touched, at: int) -> None:
        if record.platform_first_at is None:
            record.platform_first_at = at
            record.platform_amount = str(event.amount)
        record.currency = record.currency or event.currency
        if event.type in ("psp.failed", "psp.returned"):
            # The money did not arrive: paying the invoice again is a retry, not a duplicate.
            _forget_invoice(record, touched.get(VendorProfile, record.vendor_id, create=False))
        if event.channel and not record.channel:
            record.channel = event.channel
        outcome = event.type in ("psp.settled", "psp.failed", "psp.returned")
        if event.type == "psp.settled":
            record.settled_at, record.settled_amount = at, str(event.amount)
        if event.fee is not None:
            record.fee = str(Decimal(record.fee or 0) + event.fee)
        if record.status != "cancelled" or outcome:
            record.status = event.type.split(".", 1)[1]
        channel: ChannelProfile | None = touched.get(ChannelProfile, event.channel or record.channel)
        if channel is not None and outcome:
            channel.stats.add(at, 0, failure=event.type != "psp.settled")
            if event.type in FAILURES and record.payment_id:
                channel.add_failure(record.payment_id, at)
            channel.first_seen = min(at, channel.first_seen or at)
            channel.last_seen = max(at, channel.last_seen or at)


def redelivery_key(event: Event) -> str:
    """What identifies a redelivery: the event id and type (an id reused by another type is another event)."""
    return f"{event.type}|{event.event_id}"


def _forget_invoice(record: PaymentRecord, vendor: VendorProfile | None) -> None:
    """Take a payment's invoice out of the duplicate register (it was cancelled or never arrived)."""
    if vendor is None or not record.invoice_norm:
        return
    registered = vendor.invoices.get(record.invoice_norm)
    if registered is not None and registered[2] == record.payment_id:
        del vendor.invoices[record.invoice_norm]


def _moment(at: int) -> datetime:
    return utc_from_epoch(at)


def _payment_summary(event: Event | None, record: PaymentRecord) -> dict[str, Any]:
    """What a person needs to find the payment, as `PaymentSummary(...).to_dict()` gives it (absent facts
    left out): never the clear account, only its masked form."""
    approved = (event.approved_by if event else None) or record.approved_by or None
    amount = str(event.amount) if event and event.amount is not None else record.amount or record.platform_amount
    facts = (
        ("amount", amount),
        ("currency", (event.currency if event else None) or record.currency),
        ("channel", (event.channel if event else None) or record.channel),
        ("payee_account_masked", (event.payee_account_masked if event else None) or record.payee_account_masked),
        ("payee_bank", event.payee_bank if event else None),
        ("payee_country", event.payee_country if event else None),
        ("vendor_name", event.vendor_name if event else None),
        ("invoice_id", event.invoice_id if event else None),
        ("po_id", event.po_id if event else None),
        ("due_date", event.due_date.isoformat() if event and event.due_date else None),
        ("created_by", (event.created_by if event else None) or record.created_by),
        ("approved_by", list(approved) if approved is not None else None),
        ("released_amount", record.released_amount),
        ("released_at", utc_from_epoch(record.released_at).isoformat() if record.released_at is not None else None),
        ("status_reason", event.status_reason if event else None),
    )  # fmt: skip
    return {name: value for name, value in facts if value is not None}
