"""JSON API for referrals: my link, the people I referred and their state, the rewards I earned."""
from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from app.auth import api_login_required
from app.services import referrals

bp = Blueprint("referrals_api", __name__, url_prefix="/api/v1/referrals")


@bp.get("")
@api_login_required
def summary():
    """The user's referral code and link, who signed up through it, and the credits it earned."""
    data = referrals.summary(current_user)
    for person in data["referred"]:
        person["joined_at"] = person["joined_at"].isoformat()
    return jsonify(data)
