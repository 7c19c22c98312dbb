"""Password hashing (argon2id) and the strength rule every password-setting path shares."""
from __future__ import annotations

import os
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.errors import ApiError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; a cap keeps one request from costing seconds of CPU
COMMON_PASSWORDS_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "common_passwords.txt")

# argon2-cffi's defaults are argon2id with the RFC 9106 "low memory" parameters.
_hasher = PasswordHasher()
# Verified against when an email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password-just-for-timing")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The refused common passwords, lower-cased, read once from app/data/common_passwords.txt."""
    with open(COMMON_PASSWORDS_FILE, encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip() and not line.startswith("#"))


def check_strength(password: object, field: str = "password") -> str:
    """Return the password when it is acceptable; otherwise raise a 422 naming the field."""
    if not isinstance(password, str) or not password:
        raise ApiError(422, "Choose a password.", field=field)
    if len(password) < MIN_LENGTH:
        raise ApiError(422, f"Use at least {MIN_LENGTH} characters.", field=field)
    if len(password) > MAX_LENGTH:
        raise ApiError(422, f"Use at most {MAX_LENGTH} characters.", field=field)
    if password.strip().lower() in common_passwords():
        raise ApiError(422, "That password is one of the most common ones; choose another.", field=field)
    return password


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: object) -> bool:
    """True when the password matches; always spends the hashing time, even without a hash."""
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        password = ""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
