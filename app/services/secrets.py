"""Random secrets for links and tokens, and the hashes we store instead of them."""
import hashlib
import secrets


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token; 32 bytes give 256 bits, beyond guessing."""
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """SHA-256 hex of a high-entropy token; enough because the token itself is random, unlike a password."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
