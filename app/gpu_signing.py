"""Signed internal requests (web → proxy → GPU hosts): HMAC-SHA256 over method, path, timestamp and body.

No torch here: the web process and the proxy import this too.

    message   = METHOD + "\\n" + PATH + "\\n" + TIMESTAMP + "\\n" + BODY (raw bytes)
    signature = hex(HMAC-SHA256(shared secret, message))
    headers   = X-Atelier-Timestamp: TIMESTAMP (Unix seconds), X-Atelier-Signature: signature

A request is accepted when the signature matches and the timestamp is within 60 s of the receiver's clock.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Mapping

TIMESTAMP_HEADER = "X-Atelier-Timestamp"
SIGNATURE_HEADER = "X-Atelier-Signature"
REPLAY_WINDOW_S = 60


class SignatureError(Exception):
    """A request whose signature is missing, stale or wrong."""


def _digest(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    message = f"{method.upper()}\n{path}\n{timestamp}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, method: str, path: str, body: bytes = b"", timestamp: int | None = None) -> dict[str, str]:
    """The headers that sign a request to `path` with `body`."""
    stamp = str(int(time.time() if timestamp is None else timestamp))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: _digest(secret, method, path, stamp, body)}


def verify(secret: str, method: str, path: str, body: bytes, headers: Mapping[str, str],
           now: float | None = None, window_s: int = REPLAY_WINDOW_S) -> None:
    """Raise SignatureError unless the headers sign this request within the replay window."""
    stamp = headers.get(TIMESTAMP_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if not stamp or not signature:
        raise SignatureError("the request is not signed")
    try:
        age = abs((time.time() if now is None else now) - int(stamp))
    except ValueError as exc:
        raise SignatureError("the signature timestamp is not a number") from exc
    if age > window_s:
        raise SignatureError(f"the signature is stale (more than {window_s} s from this host's clock)")
    if not hmac.compare_digest(_digest(secret, method, path, stamp, body), signature):
        raise SignatureError("the signature does not match the request")
