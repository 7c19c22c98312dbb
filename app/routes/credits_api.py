"""JSON API for credits: balance and expiry, the ledger (newest first, cursor-paged), and price quotes."""
from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from app.auth import api_login_required
from app.models import Transaction
from app.routes.api_common import json_body, page_args
from app.services import credits, pricing

bp = Blueprint("credits_api", __name__, url_prefix="/api/v1/credits")


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def serialize_balance(summary: dict) -> dict:
    """Balance summary as JSON."""
    return {
        "balance": summary["balance"],
        "held": summary["held"],
        "next_expiry": _iso(summary["next_expiry"]),
        "expiring_amount": summary["expiring_amount"],
        "expiring": [{"expires_at": _iso(e["expires_at"]), "amount": e["amount"]} for e in summary["expiring"]],
    }


def serialize_entry(entry: Transaction, hold_ids: dict[int, str]) -> dict:
    """One ledger entry as JSON; `change` is its signed effect on the user's credits."""
    return {
        "id": str(entry.public_id),
        "kind": entry.kind,
        "amount": entry.amount,
        "change": credits.signed_amount(entry),
        "remaining": entry.remaining,
        "expires_at": _iso(entry.expires_at),
        "status": entry.status,
        "hold_id": hold_ids.get(entry.hold_id),
        "memo": entry.memo,
        "created_at": _iso(entry.created_at),
    }


@bp.get("")
@api_login_required
def balance():
    """The user's balance, credits held for running work, and the next expiry."""
    return jsonify(serialize_balance(credits.balance(current_user.id)))


@bp.get("/ledger")
@api_login_required
def ledger():
    """The user's ledger entries, newest first; pass `cursor` from the previous page for the next."""
    limit, cursor = page_args()
    entries, next_cursor = credits.ledger_page(current_user.id, limit, cursor)
    hold_ids = credits.hold_public_ids(entries)
    return jsonify({"entries": [serialize_entry(e, hold_ids) for e in entries], "next_cursor": next_cursor})


@bp.post("/quote")
@api_login_required
def quote():
    """What a request would cost, and whether the balance covers it; nothing is charged."""
    priced = pricing.quote(json_body())
    available = credits.balance(current_user.id)["balance"]
    return jsonify({**priced, "balance": available, "affordable": available >= priced["cost"]})
