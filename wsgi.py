"""Entry point for gunicorn: `gunicorn wsgi:app`. The role comes from config (ATELIER_SERVER_TYPE)."""
from app import create_app

app = create_app()
