"""The Celery worker's entry module: `celery -A app.celery_worker worker -Q default,media`."""
from app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]

import app.tasks  # noqa: E402,F401  (registers every @shared_task with this Celery app)
