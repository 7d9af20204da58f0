"""WCAG 2.x AA contrast (4.5:1 for body text) of the colour pairs the CSS really uses.

The colours are read from app.css (`:root` custom properties, the card and
alert backgrounds, the hard-coded hover colours), so the test follows the CSS.
Translucent backgrounds are composited the way browsers do (in sRGB) over the
lightest and the darkest stop of the page's background gradient.
"""

from __future__ import annotations

import re

import pytest

from orbitcore.ui import WEB_ROOT

CSS = WEB_ROOT / "static" / "css"
AA = 4.5
RGB = tuple[float, float, float]


def _root_colours() -> dict[str, str]:
    text = (CSS / "app.css").read_text(encoding="utf-8")
    root = re.search(r":root\s*{(.*?)}", text, re.S)
    assert root, "app.css has no :root block"
    found = dict(re.findall(r"--color-([\w-]+)\s*:\s*(#[0-9A-Fa-f]{6})\b", root.group(1)))
    assert found, "no --color-* hex values in :root"
    return found


def _rule(selector: str, prop: str, file: str = "app.css") -> str:
    """The value of `prop` in the first rule whose selector list is exactly `selector`."""
    text = (CSS / file).read_text(encoding="utf-8")
    for selectors, body in re.findall(r"([^{}]+){([^{}]*)}", text):
        if selector in [s.strip() for s in selectors.split(",")]:
            match = re.search(rf"(?:^|;|\s){re.escape(prop)}\s*:\s*([^;]+)", body)
            if match:
                return match.group(1).strip()
    raise AssertionError(f"{file}: no {prop} for {selector}")


def hex_rgb(value: str) -> RGB:
    value = value.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def rgba(value: str) -> tuple[RGB, float]:
    match = re.fullmatch(r"rgba\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*([\d.]+)\s*\)", value)
    assert match, f"not an rgba() colour: {value}"
    r, g, b, a = match.groups()
    return (float(r), float(g), float(b)), float(a)


def over(colour: tuple[RGB, float], background: RGB) -> RGB:
    (r, g, b), alpha = colour
    return (
        alpha * r + (1 - alpha) * background[0],
        alpha * g + (1 - alpha) * background[1],
        alpha * b + (1 - alpha) * background[2],
    )


def luminance(rgb: RGB) -> float:
    """WCAG 2.x relative luminance."""

    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_formula_matches_known_values() -> None:
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast((255, 255, 255), (255, 255, 255)) == pytest.approx(1.0)
    assert contrast(hex_rgb("#767676"), hex_rgb("#FFFFFF")) == pytest.approx(4.54, abs=0.01)


def _pairs() -> list[tuple[str, RGB, RGB]]:
    c = {name: hex_rgb(value) for name, value in _root_colours().items()}
    card = rgba(_rule(".card", "background"))
    alert = rgba(_rule(".alert", "background"))
    # The page background is a gradient from deep-blue (top) through abyss to midnight.
    cards = {
        "card/deep-blue": over(card, c["deep-blue"]),
        "card/midnight": over(card, c["midnight"]),
    }
    pairs: list[tuple[str, RGB, RGB]] = [
        # The pairs named in the design review.
        ("ice on midnight", c["ice"], c["midnight"]),
        ("ice on abyss", c["ice"], c["abyss"]),
        ("ice on deep-blue", c["ice"], c["deep-blue"]),
        ("muted on midnight", c["muted"], c["midnight"]),
        ("muted on abyss", c["muted"], c["abyss"]),
        ("aurora link on midnight", c["aurora"], c["midnight"]),
        ("aurora link on abyss", c["aurora"], c["abyss"]),
        ("midnight on aurora (button, skip link)", c["midnight"], c["aurora"]),
        ("midnight on danger (danger button)", c["midnight"], c["danger"]),
        ("danger text on abyss (errors, dialog)", c["danger"], c["abyss"]),
        # What else app.css and admin.css put together.
        ("muted on deep-blue (top of the page)", c["muted"], c["deep-blue"]),
        ("aurora on deep-blue (links at the top)", c["aurora"], c["deep-blue"]),
        ("midnight on mint (button hover)", c["midnight"], c["mint"]),
        ("mint on deep-blue (ghost button hover)", c["mint"], c["deep-blue"]),
        ("ice on deep-blue (outline button hover)", c["ice"], c["deep-blue"]),
        ("ice on midnight (inputs)", c["ice"], c["midnight"]),
        (
            "midnight on danger hover",
            c["midnight"],
            hex_rgb(_rule(".button--danger:hover", "background")),
        ),
    ]
    for name, background in cards.items():
        pairs += [
            (f"ice on {name}", c["ice"], background),
            (f"muted on {name} (captions, hints, report labels)", c["muted"], background),
            (f"aurora on {name} (links, admin badge and notice)", c["aurora"], background),
            (f"danger on {name} (field errors)", c["danger"], background),
            (f"ice on alert over {name}", c["ice"], over(alert, background)),
        ]
    return pairs


PAIRS = _pairs()


@pytest.mark.parametrize(("name", "fg", "bg"), PAIRS, ids=[p[0] for p in PAIRS])
def test_text_contrast_meets_wcag_aa(name: str, fg: RGB, bg: RGB) -> None:
    ratio = contrast(fg, bg)
    assert ratio >= AA, f"{name}: {ratio:.2f}:1 is below {AA}:1"


def _files_pairs() -> list[tuple[str, RGB, RGB]]:
    """The file transfers' states on their item (files.css): an item sits on a card."""
    c = {name: hex_rgb(value) for name, value in _root_colours().items()}
    item = c["deep-blue"]
    assert _rule(".transfer", "background", "files.css") == "var(--color-deep-blue)"
    offer = rgba(
        _rule(
            '.transfer[data-state="offered"][data-direction="incoming"]', "background", "files.css"
        )
    )
    offered = over(offer, item)
    done = hex_rgb(
        _rule('.transfer[data-state="complete"] .transfer__status', "color", "files.css")
    )
    stopped = hex_rgb(
        _rule('.transfer[data-state="failed"] .transfer__status', "color", "files.css")
    )
    return [
        ("ice on a transfer", c["ice"], item),
        ("muted caption on a transfer", c["muted"], item),
        ("ice on an offered transfer", c["ice"], offered),
        ("muted caption on an offered transfer", c["muted"], offered),
        ("complete status on a transfer", done, item),
        ("failed, cancelled, declined status on a transfer", stopped, item),
        ("aurora on the drop target", c["aurora"], c["midnight"]),
    ]


FILES_PAIRS = _files_pairs()


@pytest.mark.parametrize(("name", "fg", "bg"), FILES_PAIRS, ids=[p[0] for p in FILES_PAIRS])
def test_file_transfer_contrast_meets_wcag_aa(name: str, fg: RGB, bg: RGB) -> None:
    assert contrast(fg, bg) >= AA, f"{name}: {contrast(fg, bg):.2f}:1 is below {AA}:1"
