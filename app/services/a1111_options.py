"""Per-user A1111 options (`/sdapi/v1/options`): the checkpoint a user picked, kept in users.profile["a1111_model"].

A1111 has one global "current model"; here each user has their own, used by that user's txt2img/img2img requests
that name no model (override_settings.sd_model_checkpoint still wins), so users never switch each other's model.
"""
from __future__ import annotations

from flask import current_app

from app.errors import ApiError
from app.extensions import db
from app.models import User
from app.services import pricing

PROFILE_KEY = "a1111_model"


def checkpoint_name(value: object) -> str | None:
    """The model id in an A1111 checkpoint title ("tiny [abc123]" → "tiny"); None when empty."""
    return value.split(" [")[0] if isinstance(value, str) and value else None


def current_model(user: User) -> str:
    """The model this user's A1111 requests use when they name none: their choice, else the deployment default."""
    chosen = (user.profile or {}).get(PROFILE_KEY)
    if chosen:
        return chosen
    models = current_app.config["ATELIER"].gpu_models
    return models[0] if models else "tiny"


def chosen_model(user: User) -> str | None:
    """The model the user picked through POST /options, if any."""
    return (user.profile or {}).get(PROFILE_KEY) or None


def set_options(user: User, options: dict) -> None:
    """Apply the options that mean something per user (sd_model_checkpoint); 422 for an unknown or disabled model."""
    if "sd_model_checkpoint" not in options:
        return  # A1111 clients post many global options; the others have no meaning here
    model = checkpoint_name(options["sd_model_checkpoint"])
    if model is None or len(model) > 200 or "\x00" in model:
        raise ApiError(422, "'sd_model_checkpoint' must be a model title from /sdapi/v1/sd-models.",
                       field="sd_model_checkpoint")
    try:
        pricing.model_multiplier(model)
    except ApiError as error:
        raise ApiError(422, error.message, field="sd_model_checkpoint") from None
    user.profile = {**(user.profile or {}), PROFILE_KEY: model}  # a new dict: plain JSON columns track assignment
    db.session.commit()
