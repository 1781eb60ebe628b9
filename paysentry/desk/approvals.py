"""Approval nodes: who must sign off before a held payment is released, per company.

`config/approvals.yaml` maps a company code (or `default`, for companies not listed) to its payment
run (when the company's next payments go out: a case is due before it) and an ordered list of
policies. The first policy whose `when` matches the case applies; its `require` lists the approvals
needed, e.g. two approvers with role `lead`. Rejecting a payment stops money and needs no approval
policy: any analyst may do it.

Who counts for a role: `analyst` is filled by analysts and leads, `lead` by leads, `treasury` by
treasury; an admin counts for any role. One person gives at most one approval per case, and a person
who created or approved the payment in the ERP (the decision's `created_by` / `approved_by`) can never
approve or resolve its case (separation of duties; checked here, on the server, for every step).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from paysentry.yaml_messages import describe_validation_error
from paysentry.yamlsource import InvalidSource, SourceError, read_source, validation_errors
from paysentry.yamlsource import load_yaml as load_yaml_tree

ApproverRole = Literal["analyst", "lead", "treasury"]
ROLE_FILLS: dict[str, frozenset[str]] = {
    "analyst": frozenset({"analyst", "lead", "admin"}),
    "lead": frozenset({"lead", "admin"}),
    "treasury": frozenset({"treasury", "admin"}),
}
"""Which user roles may give an approval required of a role."""


class Requirement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: ApproverRole
    count: int = Field(default=1, ge=1, le=5)


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: list[Literal["review", "hold", "block"]] | None = None
    amount_over: Decimal | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")

    @field_validator("action", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def matches(self, action: str, amount: Decimal | None, currency: str | None) -> bool:
        if self.action is not None and action not in self.action:
            return False
        if self.currency is not None and currency != self.currency:
            return False
        return self.amount_over is None or (amount is not None and amount > self.amount_over)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80)
    when: Condition = Field(default_factory=Condition)
    require: list[Requirement] = Field(min_length=1, max_length=5)


class PaymentRun(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weekdays: list[int] = Field(default=[0, 1, 2, 3, 4], min_length=1, max_length=7)  # 0 = Monday
    at: time = time(10, 0)
    timezone: str = "UTC"

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(not 0 <= day <= 6 for day in value):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown timezone {value!r} (expected an IANA name like 'Europe/Berlin')") from exc
        return value

    def next_after(self, moment: datetime) -> datetime:
        """The first payment run strictly after `moment` (aware)."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        for days_ahead in range(8):
            day = local.date() + timedelta(days=days_ahead)
            if day.weekday() in self.weekdays:
                run = datetime.combine(day, self.at, tzinfo=zone)
                if run > local:
                    return run.astimezone(moment.tzinfo)
        raise AssertionError("a payment run falls within any 8 days")  # weekdays is never empty


class CompanyApprovals(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    payment_run: PaymentRun | None = None
    policies: list[Policy] | None = Field(default=None, max_length=50)


_FALLBACK_POLICY = Policy(name="one analyst", require=[Requirement(role="analyst")])


class ApprovalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    companies: dict[str, CompanyApprovals] = Field(default_factory=dict)
    source_hash: str = "built-in"

    def _company(self, company: str | None) -> CompanyApprovals | None:
        return self.companies.get(company or "") if company else None

    def policy_for(self, company: str | None, action: str, amount: Decimal | None, currency: str | None) -> Policy:
        own = self._company(company)
        default = self.companies.get("default")
        policies = (own.policies if own and own.policies is not None else None) or (
            default.policies if default and default.policies else []
        )
        for policy in policies:
            if policy.when.matches(action, amount, currency):
                return policy
        return _FALLBACK_POLICY

    def payment_run(self, company: str | None) -> PaymentRun:
        own = self._company(company)
        if own and own.payment_run:
            return own.payment_run
        default = self.companies.get("default")
        return default.payment_run if default and default.payment_run else PaymentRun()


class ApprovalsError(InvalidSource, ValueError):
    """An approvals file that cannot be used: one `path:line:col: message` line per problem."""


def load_approvals(path: Path) -> ApprovalConfig:
    """The approvals file at `path`, or ApprovalsError listing every problem as file:line:col."""
    shown = str(path)
    try:
        text = read_source(path, shown)
        root = load_yaml_tree(text, shown)
    except InvalidSource as exc:
        raise ApprovalsError(exc.errors) from None
    if root is None:
        root = {}
    if not isinstance(root, dict):
        raise ApprovalsError([SourceError(shown, 1, 1, "expected a mapping of company codes to approval settings")])
    errors: list[SourceError] = []
    companies: dict[str, CompanyApprovals] = {}
    for code, value in root.items():
        try:
            companies[str(code)] = CompanyApprovals.model_validate(value or {})
        except ValidationError as exc:
            what = f"company '{code}'"

            def describe(error: ErrorDetails, what: str = what) -> tuple[tuple[Any, ...], str]:
                return describe_validation_error(error, what, CompanyApprovals)

            errors += validation_errors(exc, root, shown, describe, base=(code,), containers_at_key=True)
    if errors:
        raise ApprovalsError(errors)
    return ApprovalConfig(companies=companies, source_hash="sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16])


def load_or_builtin(path: Path) -> ApprovalConfig:
    """The file when it exists; the built-in policy (one analyst) when it does not. A broken file raises."""
    return load_approvals(path) if path.exists() else ApprovalConfig()


class ApprovalRefused(PermissionError):
    """This person may not give this approval; the message says why."""


def is_erp_party(user_name: str, erp_user_id: str | None, erp_users: list[str]) -> bool:
    """Whether the desk user created or approved the payment in the ERP."""
    parties = {u.casefold() for u in erp_users}
    return user_name.casefold() in parties or (erp_user_id is not None and erp_user_id.casefold() in parties)


def next_requirement(policy: Policy, given: list[tuple[str, str]], user_name: str, user_role: str) -> str:
    """The required role that `user_name`'s approval fills, given the approvals so far as (user, role
    filled) pairs; ApprovalRefused when the user already approved or the role fills nothing left."""
    if any(name == user_name for name, _ in given):
        raise ApprovalRefused("you already approved this case; another person must give the next approval")
    for requirement in policy.require:
        filled = sum(1 for _, role in given if role == requirement.role)
        if filled < requirement.count and user_role in ROLE_FILLS[requirement.role]:
            return requirement.role
    missing = missing_approvals(policy, given)
    needed = ", ".join(f"{count} more {role}" for role, count in missing.items())
    raise ApprovalRefused(f"policy '{policy.name}' still needs {needed}; your role ({user_role}) cannot give that")


def missing_approvals(policy: Policy, given: list[tuple[str, str]]) -> dict[str, int]:
    """Role -> approvals still needed under `policy`."""
    missing: dict[str, int] = {}
    for requirement in policy.require:
        left = requirement.count - sum(1 for _, role in given if role == requirement.role)
        if left > 0:
            missing[requirement.role] = missing.get(requirement.role, 0) + left
    return missing
