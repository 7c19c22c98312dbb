"""Accounts: registration, verification, log-in checks, password reset and change, email change, deletion.

Plain functions over the session; routes, pages and the `flask users` commands all call these.
"""
from __future__ import annotations

import re
import secrets as pysecrets
from datetime import datetime, timedelta
from typing import Sequence

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from app import signals
from app.errors import ApiError
from app.extensions import db
from app.models import EmailToken, User, utcnow
from app.services import mailer, passwords
from app.services.secrets import hash_token, new_token

# Deliberately loose: one @, something on both sides, a dot in the domain. Deliverability is proven by the link.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = 320
VERIFY, RESET, CHANGE_EMAIL = "verify_email", "reset_password", "change_email"
RESET_REQUESTED_MESSAGE = "If an account exists for that address, we have sent it a link to reset the password."


def normalize_email(raw: object, field: str = "email") -> str:
    """The address trimmed and lower-cased; 422 naming the field when it is not an email address."""
    if not isinstance(raw, str) or not raw.strip():
        raise ApiError(422, "Enter your email address.", field=field)
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.match(email):
        raise ApiError(422, "Enter a valid email address, like name@example.com.", field=field)
    return email


def find_user_by_email(email: str) -> User | None:
    """The user with this address (any case, surrounding spaces ignored), or None."""
    if not isinstance(email, str):
        return None
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def get_user_by_email(email: str) -> User:
    """The user with this address; 404 when there is none."""
    user = find_user_by_email(email)
    if user is None:
        raise ApiError(404, f"No account for {email.strip()}.")
    return user


def new_referral_code() -> str:
    """A random, non-guessable referral code (12 URL-safe characters, 72 bits)."""
    return pysecrets.token_urlsafe(9)


def register(email: object, password: object, referral_code: str | None = None, *, is_admin: bool = False,
             verified: bool = False, send_email: bool = True) -> User:
    """Create an account; receivers of user_registered may veto it with ApiError, leaving no row behind."""
    email = normalize_email(email)
    passwords.check_strength(password)
    if find_user_by_email(email) is not None:
        raise ApiError(409, "An account with that email already exists. Log in or reset the password.",
                       code="email_taken", field="email")
    user = User(email=email, password_hash=passwords.hash_password(password), referral_code=new_referral_code(),
                is_admin=is_admin, is_verified=verified, verified_at=utcnow() if verified else None)
    db.session.add(user)
    try:
        db.session.flush()
        # Referrals and the sign-up bonus hook in here, inside this transaction.
        signals.user_registered.send(user, referral_code=referral_code or None)
        if verified:
            signals.user_verified.send(user)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # two sign-ups with one address raced; the unique index decided
        raise ApiError(409, "An account with that email already exists. Log in or reset the password.",
                       code="email_taken", field="email") from None
    except BaseException:
        db.session.rollback()
        raise
    if send_email and not verified:
        send_verification_email(user)
    return user


def _issue_token(user: User, purpose: str, ttl: timedelta, new_email: str | None = None) -> str:
    """Store the hash of a fresh single-use token (replacing unused ones of the same purpose); return the token."""
    db.session.execute(delete(EmailToken).where(EmailToken.user_id == user.id, EmailToken.purpose == purpose,
                                                EmailToken.used_at.is_(None)))
    token = new_token()
    db.session.add(EmailToken(user_id=user.id, purpose=purpose, token_hash=hash_token(token),
                              new_email=new_email, expires_at=utcnow() + ttl))
    db.session.commit()
    return token


def _consume_token(token: object, purposes: Sequence[str]) -> EmailToken:
    """Mark a valid token used (in the session, not yet committed) and return it; 400 when unknown, used or expired."""
    if not isinstance(token, str) or not token.strip():
        raise ApiError(422, "'token' is required.", field="token")
    row = db.session.scalar(
        select(EmailToken).where(EmailToken.token_hash == hash_token(token.strip()),
                                 EmailToken.purpose.in_(purposes)).with_for_update()
    )
    if row is None or row.used_at is not None:
        raise ApiError(400, "This link is not valid or has already been used.", code="invalid_token", field="token")
    if row.expires_at <= utcnow():
        raise ApiError(400, "This link has expired; ask for a new one.", code="expired_token", field="token")
    row.used_at = utcnow()
    return row


def _link(path: str, token: str) -> str:
    return f"{current_app.config['ATELIER'].base_url.rstrip('/')}{path}?token={token}"


def _email_ttl() -> timedelta:
    return timedelta(hours=current_app.config["ATELIER"].email_token_ttl_hours)


def send_verification_email(user: User) -> None:
    """Email the user a single-use link that verifies their address."""
    link = _link("/verify", _issue_token(user, VERIFY, _email_ttl()))
    hours = current_app.config["ATELIER"].email_token_ttl_hours
    mailer.send(mailer.Message(
        to=user.email, subject="Confirm your email address for Atelier",
        text=f"Welcome to Atelier.\n\nConfirm your email address by opening this link:\n{link}\n\n"
             f"The link works once and expires in {hours} hours. If you did not sign up, ignore this email.\n",
    ))


def resend_verification(user: User) -> None:
    """Send a fresh verification link; 409 when the address is already verified."""
    if user.is_verified:
        raise ApiError(409, "Your email address is already verified.", code="already_verified")
    send_verification_email(user)


def verify_email(token: object) -> User:
    """Confirm an address from an emailed token: a sign-up verification or a change of email."""
    row = _consume_token(token, (VERIFY, CHANGE_EMAIL))
    user = row.user
    if row.purpose == CHANGE_EMAIL:
        if find_user_by_email(row.new_email) not in (None, user):
            db.session.commit()  # the token is spent either way
            raise ApiError(409, "Another account now uses that email address.", code="email_taken")
        user.email = row.new_email
    newly_verified = not user.is_verified
    if newly_verified:
        user.is_verified = True
        user.verified_at = utcnow()
        signals.user_verified.send(user)
    db.session.commit()
    return user


def authenticate(email: object, password: object) -> User:
    """The user whose email and password match, with last_login_at recorded; 401 otherwise."""
    user = find_user_by_email(email) if isinstance(email, str) else None
    if not passwords.verify_password(user.password_hash if user else None, password):
        raise ApiError(401, "The email or password is not right.", code="invalid_credentials")
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def request_password_reset(email: object) -> None:
    """Email a reset link when the account exists; silently do nothing otherwise (no account enumeration)."""
    user = find_user_by_email(email) if isinstance(email, str) else None
    if user is None:
        return
    minutes = current_app.config["ATELIER"].password_reset_ttl_minutes
    link = _link("/reset-password", _issue_token(user, RESET, timedelta(minutes=minutes)))
    mailer.send(mailer.Message(
        to=user.email, subject="Reset your Atelier password",
        text=f"Someone asked to reset the password of your Atelier account.\n\nChoose a new password here:\n{link}\n\n"
             f"The link works once and expires in {minutes} minutes. If it was not you, ignore this email; "
             "your password stays as it is.\n",
    ))


def _set_password(user: User, password: str) -> None:
    """Store a new hash and bump the session epoch so every existing session ends."""
    user.password_hash = passwords.hash_password(password)
    user.session_epoch = (user.session_epoch or 0) + 1
    db.session.execute(update(EmailToken).where(EmailToken.user_id == user.id, EmailToken.purpose == RESET,
                                                EmailToken.used_at.is_(None)).values(used_at=utcnow()))


def reset_password(token: object, password: object) -> User:
    """Set a new password from a reset token; ends every session of the user."""
    passwords.check_strength(password)
    row = _consume_token(token, (RESET,))
    _set_password(row.user, password)
    db.session.commit()
    return row.user


def change_password(user: User, current_password: object, new_password: object) -> User:
    """Change the password after checking the current one; ends every other session."""
    if not passwords.verify_password(user.password_hash, current_password):
        raise ApiError(403, "The current password is not right.", code="wrong_password", field="current_password")
    passwords.check_strength(new_password, field="new_password")
    _set_password(user, new_password)
    db.session.commit()
    return user


def set_password(email: str, password: str) -> User:
    """Operator path: set a user's password without the old one; ends their sessions."""
    user = get_user_by_email(email)
    passwords.check_strength(password)
    _set_password(user, password)
    db.session.commit()
    return user


def request_email_change(user: User, password: object, new_email: object) -> str:
    """Send a confirmation link to the new address; the email changes only once it is opened. Returns the address."""
    if not passwords.verify_password(user.password_hash, password):
        raise ApiError(403, "The password is not right.", code="wrong_password", field="password")
    email = normalize_email(new_email, field="new_email")
    if email == user.email:
        raise ApiError(422, "That is already your email address.", field="new_email")
    if find_user_by_email(email) is not None:
        raise ApiError(409, "Another account uses that email address.", code="email_taken", field="new_email")
    link = _link("/verify", _issue_token(user, CHANGE_EMAIL, _email_ttl(), new_email=email))
    mailer.send(mailer.Message(
        to=email, subject="Confirm your new email address for Atelier",
        text=f"Confirm that {email} should become the address of your Atelier account:\n{link}\n\n"
             "Until you open the link, your account keeps its current address.\n",
    ))
    return email


def verify_user(email: str) -> User:
    """Operator path: mark an address verified without a link."""
    user = get_user_by_email(email)
    if not user.is_verified:
        user.is_verified = True
        user.verified_at = utcnow()
        signals.user_verified.send(user)
    db.session.commit()
    return user


def delete_account(user: User, password: object) -> None:
    """Delete the user's account and rows after checking the password."""
    if not passwords.verify_password(user.password_hash, password):
        raise ApiError(403, "The password is not right.", code="wrong_password", field="password")
    delete_user(user)


def delete_user(user: User) -> None:
    """Remove the user with their images' bytes; their rows go with them through ON DELETE CASCADE."""
    from app.services import media  # imported here: media pulls in storage and Pillow

    media.delete_all_images(user)
    db.session.execute(delete(User).where(User.id == user.id))
    db.session.commit()
    db.session.expunge_all()


def list_users(limit: int = 1000) -> list[User]:
    """Users, newest first."""
    return list(db.session.scalars(select(User).order_by(User.created_at.desc(), User.id.desc()).limit(limit)))


def count_users() -> int:
    """How many accounts exist."""
    return db.session.scalar(select(func.count(User.id))) or 0


def serialize_user(user: User) -> dict:
    """The public JSON view of an account."""
    return {
        "id": str(user.public_id),
        "email": user.email,
        "verified": user.is_verified,
        "admin": user.is_admin,
        "referral_code": user.referral_code,
        "created_at": _iso(user.created_at),
        "verified_at": _iso(user.verified_at),
        "last_login_at": _iso(user.last_login_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
