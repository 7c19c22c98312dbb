"""A Hypothesis state machine drives grants, spends, holds, settlement, hold extensions, expiry, sweeps and
referral rewards in random order while time moves forward; after every step balances are never negative, equal the
entries, and the audit passes."""
from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule, run_state_machine_as_test
from sqlalchemy import select, text, update

from app import signals
from app.errors import ApiError
from app.extensions import db
from app.models import Base, Referral, Transaction, User
from app.services import credits, rewards
from tests.credits.conftest import T0


def _reset_tables() -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()


def _user(email: str, verified: bool) -> int:
    user = User(email=email, password_hash="x", referral_code=email.split("@")[0], is_verified=verified)
    db.session.add(user)
    db.session.commit()
    return user.id


def build_machine(app):
    class Ledger(RuleBasedStateMachine):
        holds = Bundle("holds")

        def __init__(self):
            super().__init__()
            self.context = app.app_context()
            self.context.push()
            _reset_tables()
            self.now = T0
            self.referrer = _user("referrer@example.com", verified=True)
            self.friend = _user("friend@example.com", verified=False)
            db.session.add(Referral(referrer_id=self.referrer, referred_id=self.friend, code_used="referrer"))
            db.session.commit()
            self.rule_ids = [rewards.add_rule("welcome", "verified", 5, "both").id,
                             rewards.add_rule("first-image", "first_generation", 3, "referrer").id]
            self.users = [self.referrer, self.friend]
            self.friend_verified = False

        def teardown(self):
            db.session.remove()
            self.context.pop()

        def _balance(self, uid: int) -> int:
            return credits.balance(uid, now=self.now)["balance"]

        def _verified(self, uid: int) -> bool:
            return uid == self.referrer or self.friend_verified

        @rule(who=st.integers(0, 1), amount=st.integers(1, 20), days=st.integers(1, 40))
        def grant(self, who, amount, days):
            uid = self.users[who]
            before = self._balance(uid)
            credits.grant(uid, amount, expires_in_days=days, now=self.now)
            assert self._balance(uid) == before + amount

        @rule(who=st.integers(0, 1), amount=st.integers(1, 15))
        def spend(self, who, amount):
            uid = self.users[who]
            before = self._balance(uid)
            try:
                credits.spend(uid, amount, now=self.now)
            except ApiError as error:
                expected = 403 if not self._verified(uid) else 402
                assert error.status == expected and (expected == 403 or before < amount)
                assert self._balance(uid) == before
            else:
                assert self._verified(uid) and before >= amount
                assert self._balance(uid) == before - amount

        @rule(target=holds, who=st.integers(0, 1), amount=st.integers(1, 15))
        def hold(self, who, amount):
            uid = self.users[who]
            before = self._balance(uid)
            try:
                entry = credits.hold(uid, amount, now=self.now)
            except ApiError as error:
                assert error.status in (402, 403) and self._balance(uid) == before
                return None
            assert self._balance(uid) == before - amount
            return entry.id

        @rule(hold_id=consumes(holds), share=st.fractions(0, 1))
        def capture(self, hold_id, share):
            if hold_id is None:
                return
            entry = db.session.get(Transaction, hold_id)
            db.session.refresh(entry)
            amount, was_active = int(entry.amount * share), entry.status == "active"
            before = self._balance(entry.user_id)
            try:
                credits.capture(hold_id, amount, now=self.now)
            except ApiError as error:  # the sweeper released it first: nothing may be charged
                assert error.code == "hold_released" and not was_active
                return
            if not was_active:  # capturing nothing from a released hold is a harmless no-op
                assert amount == 0 and self._balance(entry.user_id) == before
                return
            assert self._balance(entry.user_id) == before + (entry.amount - amount) - self._expired_returns(hold_id)

        @rule(hold_id=consumes(holds))
        def release(self, hold_id):
            if hold_id is None:
                return
            entry = db.session.get(Transaction, hold_id)
            db.session.refresh(entry)
            was_active = entry.status == "active"
            before = self._balance(entry.user_id)
            credits.release(hold_id, now=self.now)
            returned = entry.amount - self._expired_returns(hold_id) if was_active else 0
            assert self._balance(entry.user_id) == before + returned

        @rule(hold_id=holds, hours=st.integers(0, 48))
        def extend(self, hold_id, hours):
            if hold_id is None:
                return
            entry = db.session.get(Transaction, hold_id)
            db.session.refresh(entry)
            status, deadline, until = entry.status, entry.expires_at, self.now + timedelta(hours=hours)
            before = self._balance(entry.user_id)
            credits.extend_hold(hold_id, until)
            db.session.refresh(entry)
            assert entry.status == status and self._balance(entry.user_id) == before
            assert entry.expires_at == (max(deadline, until) if status == "active" else deadline)

        def _expired_returns(self, hold_id: int) -> int:
            """Credits a settlement gave back to grants that had expired meanwhile (they do not come back)."""
            settled = db.session.scalars(select(Transaction).where(Transaction.hold_id == hold_id,
                                                                   Transaction.kind == "release")).all()
            expired = 0
            for release in settled:
                for allocation in release.allocations:
                    grant = db.session.get(Transaction, allocation["entry"])
                    if grant.expires_at <= self.now:
                        expired += allocation["amount"]
            return expired

        @rule(hours=st.integers(1, 24 * 12))
        def advance_time(self, hours):
            self.now += timedelta(hours=hours)

        @rule()
        def expire(self):
            before = [self._balance(uid) for uid in self.users]
            credits.expire_due(now=self.now)
            assert [self._balance(uid) for uid in self.users] == before  # expired credits were already unspendable

        @rule()
        def sweep(self):
            credits.sweep_stale_holds(now=self.now)

        @rule()
        def friend_generates(self):
            signals.generation_succeeded.send(db.session.get(User, self.friend), kind="image")
            db.session.commit()

        @rule()
        def friend_verifies(self):
            db.session.execute(update(User).where(User.id == self.friend).values(is_verified=True))
            signals.user_verified.send(db.session.get(User, self.friend))
            db.session.commit()
            self.friend_verified = True

        @invariant()
        def ledger_is_exact(self):
            for uid in self.users:
                entries = db.session.scalars(select(Transaction).where(Transaction.user_id == uid)).all()
                total = sum(credits.signed_amount(e) for e in entries)
                not_yet_posted = sum(e.remaining for e in entries if e.remaining and e.expires_at <= self.now)
                balance = self._balance(uid)
                assert balance >= 0
                assert balance == total - not_yet_posted
                rewarded = [e for e in entries if e.kind == "referral_reward"]
                if not self.friend_verified:
                    assert rewarded == []
                assert len({(e.reward_id, e.referral_id) for e in rewarded}) == len(rewarded)
            report = credits.audit(now=self.now)
            assert report.ok, report.violations

    return Ledger


def test_random_ledger_operations_keep_every_invariant(app):
    run_state_machine_as_test(build_machine(app), settings=settings(
        max_examples=25, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
