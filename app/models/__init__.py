"""All models, imported here so the metadata is complete wherever it is needed (alembic, tests)."""
from app.models.base import Base, utcnow
from app.models.credit import Transaction
from app.models.host import ApiHost, ModelEntry
from app.models.job import GenerationJob, IdempotentResponse
from app.models.media import Audio, Image, Link, Video, VideoProject
from app.models.referral import Referral, Reward
from app.models.user import ApiToken, EmailToken, User

__all__ = [
    "ApiHost", "ApiToken", "Audio", "Base", "EmailToken", "GenerationJob", "IdempotentResponse", "Image", "Link", "ModelEntry", "Referral", "Reward",
    "Transaction", "User", "Video", "VideoProject", "utcnow",
]
