"""axe-core accessibility checks and layout checks in the harness's Chromium, offline.

``axe.min.js`` comes from a local file shipped by the ``axe-playwright-python`` wheel (a
dev dependency; axe-core is MPL-2.0): nothing is downloaded. It is injected through the
Chrome DevTools protocol (``Runtime.evaluate``), which the page's strict CSP does not
apply to, and run on the current document.

- :func:`serious_violations` runs axe and returns the violations of impact ``serious`` or
  ``critical`` (rule id, help, the first targets), for ``assert ... == []``.
- :func:`viewport` sets the page's viewport (e.g. 390 × 844, a phone) for a ``with``
  block; :func:`horizontal_overflow` and :func:`outside_viewport` check the layout;
  :func:`screenshot` writes a PNG of the viewport (e.g. to ``docs/screenshots/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from tests.web.harness import Browser

__all__ = [
    "SCREENSHOTS",
    "axe_source",
    "horizontal_overflow",
    "outside_viewport",
    "screenshot",
    "serious_violations",
    "viewport",
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
"""Where the tests write the screenshots of the page (kept in the repository)."""

_SERIOUS = ("serious", "critical")


@cache
def axe_source() -> str:
    """The text of ``axe.min.js`` (from the installed ``axe_playwright_python`` package)."""
    return (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def serious_violations(page: Browser, *, context: str = "document") -> list[dict[str, Any]]:
    """axe-core's ``serious``/``critical`` violations on the current page (WCAG 2.x A/AA
    rules and best practices), each ``{id, impact, help, targets}``; ``context`` is
    ``"document"`` or a CSS selector of the part to check."""
    has_axe = page.driver.execute_script("return typeof window.axe === 'object'")
    if not has_axe:
        page.driver.execute_cdp_cmd(
            "Runtime.evaluate", {"expression": axe_source(), "returnByValue": False}
        )
    result = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        window.axe
          .run(arguments[0] === "document" ? document : document.querySelector(arguments[0]),
               { resultTypes: ["violations"] })
          .then((r) => done(r.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
          }))))
          .catch((e) => done([
            { id: "axe-error", impact: "critical", help: String(e), targets: [] },
          ]));
        """,
        context,
    )
    return [v for v in result if v.get("impact") in _SERIOUS]


@contextmanager
def viewport(page: Browser, width: int, height: int | None = None) -> Iterator[None]:
    """The page laid out at ``width`` × ``height`` CSS px (a phone below 700 px: mobile
    emulation); restored afterwards."""
    height = height or (844 if width < 700 else 900)
    page.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700},
    )
    try:
        yield
    finally:
        page.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def horizontal_overflow(page: Browser) -> int:
    """How many CSS px the document is wider than its viewport (0 = no sideways scroll)."""
    return int(
        page.js(
            "const d = document.documentElement;"
            "return Math.max(d.scrollWidth, document.body.scrollWidth) - d.clientWidth;"
        )
    )


def outside_viewport(page: Browser, css: str) -> list[str]:
    """Visible elements matching ``css`` that are not wholly inside the viewport
    horizontally, or not reachable (inside a box that clips them), after scrolling each
    into view; ``[]`` when all are. Each entry names the element and its box."""
    bad: list[str] = page.js(
        """
        const out = [];
        for (const el of document.querySelectorAll(arguments[0])) {
          if (!el.offsetParent) continue;
          el.scrollIntoView({ block: "center", inline: "nearest" });
          const r = el.getBoundingClientRect();
          const w = document.documentElement.clientWidth;
          const h = window.innerHeight;
          const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
          const inside = r.left >= 0 && r.right <= w && r.top >= 0 && r.bottom <= h;
          if (!inside || !(hit === el || el.contains(hit))) {
            const box = [r.left, r.right, r.top, r.bottom].map(Math.round);
            out.push(`${el.id || el.className} ${el.textContent.trim()}: ${box} in ${w} x ${h}`);
          }
        }
        window.scrollTo(0, 0);
        return out;
        """,
        css,
    )
    return bad


def screenshot(page: Browser, name: str, *, at: str | None = None) -> Path:
    """Write the viewport as ``docs/screenshots/{name}.png``; its path. The page is
    scrolled to its top, or to bring the element ``at`` (CSS selector) to the top."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.js(
        "const el = arguments[0] && document.querySelector(arguments[0]);"
        "if (el) el.scrollIntoView({ block: 'start' }); else window.scrollTo(0, 0);",
        at,
    )
    path.write_bytes(page.driver.get_screenshot_as_png())
    return path
