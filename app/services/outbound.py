"""POSTs to URLs that users gave us, without letting them reach our own network (an SSRF guard).

check_url() runs when the URL is submitted (scheme, credentials, length, literal addresses: a 422 naming the
field). post() runs when we send: it resolves the host, refuses the request when ANY resolved address is
loopback, private, link-local (cloud metadata 169.254.169.254 included), multicast, reserved or unspecified,
then connects to the checked address itself (the Host header, TLS SNI and certificate check keep the name),
so a DNS answer that changes between check and connect cannot move the request. Redirects are never followed.
`webhook_allow_private_addresses` turns the address check off for tests and single-machine setups.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

import requests
from flask import current_app
from requests.adapters import HTTPAdapter

from app.errors import ApiError

MAX_URL_CHARS = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeURL(ValueError):
    """A URL we refuse to send to (bad form, or a host that resolves into a private network)."""


def _allow_private() -> bool:
    return bool(current_app.config["ATELIER"].webhook_allow_private_addresses)


def is_forbidden_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for addresses a webhook must not reach: anything not on the public internet."""
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    if mapped is not None:
        address = mapped
    return (address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified or not address.is_global
            or getattr(address, "is_site_local", False))


def _split(url: object) -> tuple:
    """The parsed URL, or UnsafeURL saying what is wrong with its form."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise UnsafeURL(f"must be an http(s) URL of at most {MAX_URL_CHARS} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise UnsafeURL("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL("is not a valid URL") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise UnsafeURL(f"must be an http(s) URL of at most {MAX_URL_CHARS} characters")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("must not contain a user name or password")
    return parts, port or DEFAULT_PORTS[parts.scheme]


def _literal(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: object, field: str) -> str | None:
    """Validate a user-supplied webhook URL at submit time; None for empty, else the URL or a 422 naming FIELD."""
    if url is None or url == "":
        return None
    try:
        parts, _ = _split(url)
        literal = _literal(parts.hostname)
        if literal is not None and not _allow_private() and is_forbidden_address(literal):
            raise UnsafeURL("must not point to a private, loopback or link-local address")
    except UnsafeURL as exc:
        raise ApiError(422, f"'{field}' {exc}.", field=field) from None
    return url


def resolve_checked(url: str) -> tuple:
    """Resolve the URL's host and check every address; (parts, port, the address to connect to) or UnsafeURL."""
    parts, port = _split(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"cannot resolve {parts.hostname}: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UnsafeURL(f"cannot resolve {parts.hostname}")
    if not _allow_private():
        bad = [str(a) for a in addresses if is_forbidden_address(a)]
        if bad:
            raise UnsafeURL(f"{parts.hostname} resolves to a forbidden address ({', '.join(bad)})")
    return parts, port, addresses[0]


class _PinnedTLS(HTTPAdapter):
    """Connects to an IP literal but does SNI and certificate checks for the original host name."""

    def __init__(self, hostname: str):
        self.hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        kwargs.update(server_hostname=self.hostname, assert_hostname=self.hostname)
        super().init_poolmanager(*args, **kwargs)


def post(url: str, *, data: bytes | None = None, json: object = None, headers: dict | None = None,
         timeout: float = 10, verify: bool | str = True) -> requests.Response:
    """POST to a user-supplied URL after the address check, to the checked address, never following redirects.

    `verify` is requests' (True: the system CA bundle; or the path of one).
    """
    parts, port, address = resolve_checked(url)
    host = f"[{address}]" if address.version == 6 else str(address)
    netloc = host if port == DEFAULT_PORTS[parts.scheme] else f"{host}:{port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    name = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    host_header = name if parts.port in (None, DEFAULT_PORTS[parts.scheme]) else f"{name}:{parts.port}"
    with requests.Session() as session:
        session.trust_env = False  # an environment proxy would connect somewhere we did not check
        session.mount("https://", _PinnedTLS(parts.hostname))
        return session.post(pinned, data=data, json=json, headers={**(headers or {}), "Host": host_header},
                            timeout=timeout, allow_redirects=False, verify=verify)
