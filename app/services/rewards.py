"""Referral rewards: declarative rules (trigger, amount, beneficiary, expiry, cap), granted exactly once.

A reward is paid once per (rule, referral, beneficiary): the unique constraint on transactions guarantees it,
and the locks taken here (referred user's row, then the referrer's, always in that order; referrals form a
forest, so this order can never deadlock) make concurrent triggers see each other instead of colliding.
Nothing is paid before the referred user has verified their email; `run_all` catches up what was missed.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select, update

from app.errors import ApiError
from app.extensions import db
from app.models import Referral, Reward, Transaction, User, utcnow
from app.models.referral import REWARD_BENEFICIARIES, REWARD_TRIGGERS
from app.services import credits

log = logging.getLogger(__name__)
EVENT_COLUMNS = {"first_generation": Referral.first_generation_at, "first_purchase": Referral.first_purchase_at}


# ------------------------------------------------------------------------------------------------ rules

def add_rule(name: str, trigger: str, amount: int, beneficiary: str, *, expires_in_days: int | None = None,
             cap_per_referrer: int | None = None) -> Reward:
    """Create an enabled reward rule; 422 naming the bad field, 409 if the name is taken."""
    if not name or len(name) > 100:
        raise ApiError(422, "A rule needs a name of 1 to 100 characters.", field="name")
    if trigger not in REWARD_TRIGGERS:
        raise ApiError(422, f"trigger must be one of {', '.join(REWARD_TRIGGERS)}.", field="trigger")
    if beneficiary not in REWARD_BENEFICIARIES:
        raise ApiError(422, f"beneficiary must be one of {', '.join(REWARD_BENEFICIARIES)}.", field="beneficiary")
    for label, value, minimum in (("amount", amount, 1), ("expires_in_days", expires_in_days, 1),
                                  ("cap_per_referrer", cap_per_referrer, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
            raise ApiError(422, f"{label} must be a whole number of at least {minimum}.", field=label)
    if db.session.scalar(select(Reward.id).where(Reward.name == name)) is not None:
        raise ApiError(409, f"A reward rule named {name!r} already exists.", field="name")
    rule = Reward(name=name, trigger=trigger, amount=amount, beneficiary=beneficiary,
                  expires_in_days=expires_in_days, cap_per_referrer=cap_per_referrer, enabled=True)
    db.session.add(rule)
    db.session.commit()
    return rule


def list_rules() -> list[Reward]:
    """Every reward rule, oldest first."""
    return list(db.session.scalars(select(Reward).order_by(Reward.id)))


def disable_rule(name: str) -> Reward:
    """Stop a rule from paying new rewards (what it paid stays paid)."""
    rule = db.session.scalar(select(Reward).where(Reward.name == name))
    if rule is None:
        raise ApiError(404, f"No reward rule named {name!r}.")
    rule.enabled = False
    db.session.commit()
    return rule


# ------------------------------------------------------------------------------------------------ paying

def _beneficiaries(rule: Reward, referral: Referral) -> list[int]:
    return {"referrer": [referral.referrer_id], "referred": [referral.referred_id],
            "both": [referral.referrer_id, referral.referred_id]}[rule.beneficiary]


def _paid_referrals(rule: Reward, referrer_id: int) -> int:
    return db.session.scalar(
        select(func.count(func.distinct(Transaction.referral_id)))
        .join(Referral, Referral.id == Transaction.referral_id)
        .where(Transaction.reward_id == rule.id, Referral.referrer_id == referrer_id)
    )


def apply_rewards(referral_id: int, now: datetime | None = None) -> list[Transaction]:
    """Pay every enabled rule whose trigger has happened for this referral and is not yet paid (no commit)."""
    now = now or utcnow()
    referred_id, referrer_id = db.session.execute(
        select(Referral.referred_id, Referral.referrer_id).where(Referral.id == referral_id)).one()
    verified = credits.lock_user(referred_id)
    credits.lock_user(referrer_id)
    if not verified:
        return []
    referral = db.session.execute(
        select(Referral).where(Referral.id == referral_id).execution_options(populate_existing=True)).scalar_one()
    happened = {"verified"} | {trigger for trigger, column in
                               (("first_generation", referral.first_generation_at),
                                ("first_purchase", referral.first_purchase_at)) if column is not None}
    paid = []
    for rule in db.session.scalars(select(Reward).where(Reward.enabled.is_(True), Reward.trigger.in_(happened))
                                   .order_by(Reward.id)):
        already = set(db.session.scalars(select(Transaction.user_id).where(
            Transaction.reward_id == rule.id, Transaction.referral_id == referral.id)))
        if not already and rule.cap_per_referrer is not None and \
                _paid_referrals(rule, referral.referrer_id) >= rule.cap_per_referrer:
            continue
        for user_id in _beneficiaries(rule, referral):
            if user_id in already:
                continue
            entry, _ = credits.credit(user_id, rule.amount, kind="referral_reward",
                                      expires_in_days=rule.expires_in_days, memo=f"referral reward: {rule.name}",
                                      reward_id=rule.id, referral_id=referral.id, now=now, commit=False)
            paid.append(entry)
    return paid


def fire(user: User | int, trigger: str, now: datetime | None = None) -> list[Transaction]:
    """Note that a referred user did `trigger` and pay what is due (no commit: the sender's transaction does)."""
    user_id = user if isinstance(user, int) else user.id
    now = now or utcnow()
    referral = db.session.execute(
        select(Referral.id, Referral.referrer_id).where(Referral.referred_id == user_id)).one_or_none()
    if referral is None:
        return []
    referral_id = referral.id
    column = EVENT_COLUMNS.get(trigger)
    if column is not None:
        credits.lock_user(user_id)  # same order as apply_rewards: referred, then referrer
        credits.lock_user(referral.referrer_id)
        db.session.execute(update(Referral).where(Referral.id == referral_id, column.is_(None))
                           .values({column.key: now}).execution_options(synchronize_session=False))
    return apply_rewards(referral_id, now)


def run_all(now: datetime | None = None) -> int:
    """Catch up: pay every reward due on every referral of a verified user; returns how many were paid."""
    ids = db.session.scalars(
        select(Referral.id).join(User, User.id == Referral.referred_id).where(User.is_verified.is_(True))
        .order_by(Referral.id)).all()
    db.session.rollback()
    paid = 0
    for referral_id in ids:
        try:
            paid += len(apply_rewards(referral_id, now))
            db.session.commit()
        except Exception:  # one bad referral must not stop the others; the next run retries it
            db.session.rollback()
            log.exception("paying rewards for referral %s failed", referral_id)
    return paid


# ------------------------------------------------------------------------------------------- receivers

def on_user_verified(sender: User, **_) -> None:
    """Signal receiver: the referred user verified; pay `verified` rewards (and any that waited for it)."""
    fire(sender, "verified")


def on_generation_succeeded(sender: User, kind: str | None = None, **_) -> None:
    """Signal receiver: a generation succeeded; pay `first_generation` rewards once verified."""
    fire(sender, "first_generation")


def on_purchase_completed(sender: User, transaction: Transaction | None = None, **_) -> None:
    """Signal receiver: a purchase was credited; pay `first_purchase` rewards once verified."""
    fire(sender, "first_purchase")
