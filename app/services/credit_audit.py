"""The ledger audit: recompute every balance from the entries and check every invariant of app.services.credits.

Invariants: each credit entry's amount - remaining equals what spends, holds and expiries drew from it minus what
releases gave back; each debit's allocations add up to its amount and point at credit entries of the same user
(expiries only at expired ones); each hold is settled consistently with its status (active: untouched; captured:
one capture plus a release of the rest; released: a release of all) back to the entries it drew from; each user's
signed entries add up to the remaining amount of their credit entries and are never negative; referral rewards
go only to the two people of a referral whose referred user has verified.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from app.extensions import db
from app.models import Referral, Transaction, User, utcnow
from app.models.credit import CREDIT_KINDS
from app.services.credits import SIGN, _user_id, signed_amount

T = Transaction


@dataclass
class AuditReport:
    """The result of recomputing every balance from the entries."""

    users: int = 0
    entries: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no invariant is broken."""
        return not self.violations


def audit(now: datetime | None = None, user: User | int | None = None) -> AuditReport:
    """Recompute every balance from the entries and check every invariant of the ledger."""
    now = now or utcnow()
    query = select(T).order_by(T.user_id, T.id)
    if user is not None:
        query = query.where(T.user_id == _user_id(user))
    entries = list(db.session.scalars(query))
    report = AuditReport(entries=len(entries))
    problems = report.violations
    by_id = {e.id: e for e in entries}
    drawn: dict[int, int] = {}
    children: dict[int, list[Transaction]] = {}
    totals: dict[int, int] = {}

    for e in entries:
        label = f"entry {e.public_id} ({e.kind}, user {e.user_id})"
        totals[e.user_id] = totals.get(e.user_id, 0) + signed_amount(e)
        if e.kind in CREDIT_KINDS:
            if e.remaining is None or not 0 <= e.remaining <= e.amount:
                problems.append(f"{label}: remaining {e.remaining} is outside 0..{e.amount}")
            continue
        allocations = e.allocations or []
        if sum(a.get("amount", 0) for a in allocations) != e.amount:
            problems.append(f"{label}: allocations add up to {sum(a.get('amount', 0) for a in allocations)}, "
                            f"not its amount {e.amount}")
        for a in allocations:
            source = by_id.get(a.get("entry"))
            if source is None or source.user_id != e.user_id or source.kind not in CREDIT_KINDS or a["amount"] <= 0:
                problems.append(f"{label}: draws from {a.get('entry')}, not a credit entry of the same user")
                continue
            if e.kind == "expire" and (source.expires_at is None or source.expires_at > e.created_at):
                problems.append(f"{label}: expires credits of entry {source.public_id} before their expiry")
            if e.kind != "capture":
                drawn[source.id] = drawn.get(source.id, 0) - SIGN[e.kind] * a["amount"]
        if e.kind in ("capture", "release"):
            parent = by_id.get(e.hold_id)
            if parent is None or parent.kind != "hold" or parent.user_id != e.user_id:
                problems.append(f"{label}: settles {e.hold_id}, which is not a hold of the same user")
            else:
                children.setdefault(parent.id, []).append(e)

    for e in entries:
        if e.kind in CREDIT_KINDS and e.remaining is not None and e.amount - e.remaining != drawn.get(e.id, 0):
            problems.append(f"entry {e.public_id} ({e.kind}, user {e.user_id}): amount {e.amount} - remaining "
                            f"{e.remaining} differs from the {drawn.get(e.id, 0)} credits the ledger drew from it")
        if e.kind == "hold":
            problems.extend(_hold_violations(e, children.get(e.id, [])))

    credited = {}
    for e in entries:
        if e.kind in CREDIT_KINDS and e.remaining is not None:
            credited[e.user_id] = credited.get(e.user_id, 0) + e.remaining
    for uid, total in totals.items():
        if total != credited.get(uid, 0):
            problems.append(f"user {uid}: entries add up to {total} but credit entries hold {credited.get(uid, 0)}")
        if total < 0:
            problems.append(f"user {uid}: balance {total} is negative")
    problems.extend(_reward_violations(entries))
    report.users = len(totals)
    return report


def _hold_violations(h: Transaction, settled_by: list[Transaction]) -> list[str]:
    label = f"hold {h.public_id} (user {h.user_id}, {h.status})"
    captured = sum(c.amount for c in settled_by if c.kind == "capture")
    released = sum(c.amount for c in settled_by if c.kind == "release")
    captures = [c for c in settled_by if c.kind == "capture"]
    expected = {
        "active": (0, 0),
        "captured": (captured, h.amount - captured),
        "released": (0, h.amount),
    }.get(h.status)
    if expected is None:
        return [f"{label}: unknown status"]
    problems = []
    if (captured, released) != expected or (h.status == "captured" and (len(captures) != 1 or captured > h.amount)):
        problems.append(f"{label}: captured {captured} and released {released} of {h.amount}")
    parts: dict[int, int] = {}
    for part in settled_by:
        for a in part.allocations or []:
            parts[a.get("entry")] = parts.get(a.get("entry"), 0) + a.get("amount", 0)
    if h.status != "active" and parts != {a["entry"]: a["amount"] for a in h.allocations or []}:
        problems.append(f"{label}: settlement does not return to the entries the hold drew from")
    return problems


def _reward_violations(entries: list[Transaction]) -> list[str]:
    rewards = [e for e in entries if e.kind == "referral_reward"]
    if not rewards:
        return []
    referrals = {r.id: r for r in db.session.scalars(
        select(Referral).where(Referral.id.in_({e.referral_id for e in rewards if e.referral_id})))}
    verified = dict(db.session.execute(
        select(User.id, User.is_verified).where(User.id.in_({r.referred_id for r in referrals.values()}))).all())
    problems = []
    for e in rewards:
        referral = referrals.get(e.referral_id)
        if e.reward_id is None or referral is None:
            problems.append(f"entry {e.public_id}: referral reward without its rule or referral")
        elif e.user_id not in (referral.referrer_id, referral.referred_id):
            problems.append(f"entry {e.public_id}: referral reward paid to someone outside the referral")
        elif not verified.get(referral.referred_id):
            problems.append(f"entry {e.public_id}: referral reward before the referred user verified")
    return problems
