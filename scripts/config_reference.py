"""Print the README's config table from Settings and config.example.json, so the two never drift apart."""
import json
import os
import sys
from dataclasses import fields

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from app.config import Settings  # noqa: E402


def main() -> None:
    """Write the markdown table to stdout."""
    comments = json.load(open("config.example.json", encoding="utf-8"))["_comments"]
    defaults = Settings()
    print("| key | default | meaning |\n|---|---|---|")
    for field in fields(Settings):
        meaning = comments[field.name].replace("|", "/")
        print(f"| `{field.name}` | `{json.dumps(getattr(defaults, field.name))}` | {meaning} |")


if __name__ == "__main__":
    main()
