"""Referrals: codes and links, recording who referred whom at sign-up, and what a referrer sees."""
from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy import func, select

from app.errors import ApiError
from app.extensions import db
from app.models import Referral, Transaction, User

def referral_link(user: User) -> str:
    """The link a user shares: /r/<code> on the public base URL."""
    return f"{current_app.config['ATELIER'].base_url.rstrip('/')}/r/{user.referral_code}"


def record_referral(referred: User, code: str) -> Referral:
    """Record that the owner of `code` referred `referred` (no commit).

    422 for an unknown code or a self-referral, 409 when the user already has a referrer.
    """
    code = (code or "").strip()
    referrer = db.session.scalar(select(User).where(User.referral_code == code)) if code else None
    if referrer is None:
        raise ApiError(422, "That referral code does not exist.", code="invalid_referral_code", field="referral_code")
    if referrer.id == referred.id:
        raise ApiError(422, "You cannot refer yourself.", code="self_referral", field="referral_code")
    existing = db.session.scalar(select(Referral).where(Referral.referred_id == referred.id))
    if existing is not None:
        raise ApiError(409, "This account already has a referrer.", code="already_referred", field="referral_code")
    referral = Referral(referrer_id=referrer.id, referred_id=referred.id, code_used=code)
    db.session.add(referral)
    db.session.flush()  # the unique referred_id settles a race between two referrals of one user
    return referral


def on_user_registered(sender: User, referral_code: str | None = None, **_) -> None:
    """Signal receiver: record the referral and grant the sign-up bonus inside the sign-up's transaction."""
    from app.services import credits

    if referral_code:
        record_referral(sender, referral_code)
    bonus = current_app.config["ATELIER"].signup_bonus_credits
    if bonus > 0:
        credits.credit(sender, bonus, kind="signup_bonus", memo="sign-up bonus", idempotency_key="signup-bonus",
                       commit=False)


def _mask_email(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}{'•' * max(len(name) - 1, 2)}@{domain}"


def summary(user: User) -> dict:
    """The user's code and link, the people they referred with each one's state, and the rewards they earned."""
    rows = db.session.execute(
        select(Referral, User).join(User, User.id == Referral.referred_id)
        .where(Referral.referrer_id == user.id).order_by(Referral.id.desc())
    ).all()
    earned = dict(db.session.execute(
        select(Transaction.referral_id, func.sum(Transaction.amount))
        .where(Transaction.user_id == user.id, Transaction.kind == "referral_reward")
        .group_by(Transaction.referral_id)
    ).all())
    people = [{
        "email": _mask_email(referred.email),
        "joined_at": referral.created_at,
        "verified": referred.is_verified,
        "first_generation": referral.first_generation_at is not None,
        "first_purchase": referral.first_purchase_at is not None,
        "credits_earned": int(earned.get(referral.id, 0)),
    } for referral, referred in rows]
    return {
        "code": user.referral_code,
        "link": referral_link(user),
        "referred": people,
        "rewards_earned": sum(int(v) for v in earned.values()),
    }


def init_app(app: Flask) -> None:
    """Connect the referral and reward receivers to the domain signals."""
    from app import signals
    from app.services import rewards

    signals.user_registered.connect(on_user_registered)
    signals.user_verified.connect(rewards.on_user_verified)
    signals.generation_succeeded.connect(rewards.on_generation_succeeded)
    signals.purchase_completed.connect(rewards.on_purchase_completed)
