"""Operator commands, grouped (`flask users ...`, `flask db ...`); each wraps a service function."""
from __future__ import annotations

from importlib import import_module

from flask import Flask

# (module, attribute, needs the cpu role)
COMMAND_GROUPS = (
    ("app.cli.database", "db_group", True),
    ("app.cli.hosts", "hosts_group", True),
    ("app.cli.models", "models_group", False),
    ("app.cli.credits", "credits_group", True),
    ("app.cli.rewards", "rewards_group", True),
    ("app.cli.users", "users_group", True),
    ("app.cli.media", "media_group", True),
    ("app.cli.videos", "videos_group", True),
    ("app.cli.maintenance", "maintenance_group", True),
)


def register_cli(app: Flask) -> None:
    """Add every command group this role can run."""
    settings = app.config["ATELIER"]
    for module_name, attribute, needs_cpu in COMMAND_GROUPS:
        if needs_cpu and not settings.serves_cpu:
            continue
        app.cli.add_command(getattr(import_module(module_name), attribute))
