"""Colour contrast of the stylesheets (WCAG 2.1 AA): text at least 4.5:1 on the backgrounds it is drawn on,
and the focus ring at least 3:1 (non-text). Colours are read from the CSS, custom properties resolved."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "app" / "static" / "css"
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
DECLARATION = re.compile(r"([-\w]+)\s*:\s*([^;]+)")


def _rules(text: str) -> list[tuple[str, dict[str, str]]]:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"@media[^{]*\{", "", text)  # flatten media blocks; their rules are checked like the others
    return [(selector.strip(), dict(DECLARATION.findall(body))) for selector, body in RULE.findall(text)]


def _variables() -> dict[str, str]:
    found: dict[str, str] = {}
    for selector, declarations in _rules((CSS / "app.css").read_text()):
        if selector == ":root":
            found.update({k: v.strip() for k, v in declarations.items() if k.startswith("--")})
    return found


VARS = _variables()


def _colour(value: str) -> tuple[float, float, float] | None:
    value = value.strip()
    while (match := re.fullmatch(r"var\((--[\w-]+)\)", value)) is not None:
        value = VARS[match.group(1)]
    if re.fullmatch(r"#[0-9a-fA-F]{3}", value):
        value = "#" + "".join(c * 2 for c in value[1:])
    if re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        return tuple(int(value[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return None  # keywords, rgba overlays, gradients: not text colours we draw with


def _luminance(rgb: tuple[float, float, float]) -> float:
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS colours."""
    first, second = sorted((_luminance(_colour(a)), _luminance(_colour(b))), reverse=True)
    return (first + 0.05) / (second + 0.05)


def test_ratio_matches_the_wcag_reference_values():
    assert ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


# Text colours drawn on the page background and on cards (white).
TEXT_ON_SURFACES = ["var(--fg)", "var(--muted)", "var(--accent)", "var(--error)", "var(--ok)"]


@pytest.mark.parametrize("surface", ["var(--bg)", "var(--card)", "#ffffff"])
@pytest.mark.parametrize("text", TEXT_ON_SURFACES)
def test_text_colours_on_page_and_card_backgrounds(text, surface):
    assert ratio(text, surface) >= 4.5, f"{text} on {surface}: {ratio(text, surface):.2f}"


def _pairs() -> list[tuple[str, str, str, str]]:
    pairs = []
    for path in sorted(CSS.glob("*.css")):
        for selector, declarations in _rules(path.read_text()):
            fg = declarations.get("color")
            bg = declarations.get("background-color") or declarations.get("background")
            if fg and bg and _colour(fg) and _colour(bg):
                pairs.append((f"{path.name}: {selector}", fg, bg, "text"))
    return pairs


def test_every_rule_that_sets_text_and_background_reads_at_4_5_to_1():
    pairs = _pairs()
    assert len(pairs) >= 8  # buttons, flashes, badges...: the parser found the rules
    failing = [f"{where}: {fg} on {bg} = {ratio(fg, bg):.2f}" for where, fg, bg, _ in pairs if ratio(fg, bg) < 4.5]
    assert not failing, "\n".join(failing)


def test_focus_ring_stands_out_from_page_and_card():
    rules = dict(_rules((CSS / "app.css").read_text()))
    ring = re.search(r"#[0-9a-fA-F]{3,6}|var\(--[\w-]+\)", rules[":focus-visible"]["outline"]).group(0)
    assert rules[":focus-visible"]["outline-offset"].strip() != "0"  # drawn on the background around the element
    for surface in ("var(--bg)", "var(--card)"):
        assert ratio(ring, surface) >= 3, f"focus ring {ring} on {surface}: {ratio(ring, surface):.2f}"
