"""A minimal axe-core accessibility check for the web page's tests.

axe-core comes from a dev dependency on PyPI (``axe-selenium-python`` ships
``axe.min.js``); it is read from that file and injected into the page with the Chrome
DevTools protocol (``Runtime.evaluate``, which the page's strict CSP does not apply to),
then run with ``axe.run``. No network.

:func:`serious_violations` returns the violations of impact ``serious`` or ``critical`` as
short lines (rule id, impact, help, the first offending selectors) for an assertion message.
"""

from __future__ import annotations

from functools import cache
from importlib import util
from pathlib import Path
from typing import Any

from tests.web.harness import Browser

__all__ = ["axe_source", "run_axe", "serious_violations"]

SERIOUS = frozenset({"serious", "critical"})

OUTDATED_IN_AXE_3 = ("dlitem", "definition-list")
"""Rules that axe-core 3.x (the wheel for Python 3.11) applies by HTML 5.1: they reject
``<div>`` groups of ``<dt>``/``<dd>`` in a ``<dl>``, which HTML 5.2 allows and axe-core 4
accepts. Turned off only under axe-core 3."""


@cache
def axe_source() -> str:
    """The text of ``axe.min.js`` shipped by the ``axe-selenium-python`` wheel."""
    spec = util.find_spec("axe_selenium_python")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("axe-selenium-python is not installed (a dev dependency: uv sync)")
    for root in spec.submodule_search_locations:
        found = sorted(Path(root).rglob("axe.min.js"))
        if found:
            return found[0].read_text(encoding="utf-8")
    raise RuntimeError("axe-selenium-python ships no axe.min.js")


def run_axe(page: Browser, context: str = "body") -> dict[str, Any]:
    """Inject axe-core (once per document) and run it on ``context``; its result object."""
    page.driver.execute_cdp_cmd(
        "Runtime.evaluate", {"expression": axe_source() + "\n;void 0", "returnByValue": True}
    )
    assert page.js("return typeof window.axe") == "object", "axe-core did not load"
    result: dict[str, Any] = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const rules = {};
        if (window.axe.version.startsWith('3.')) {
          for (const r of arguments[1]) rules[r] = {enabled: false};
        }
        window.axe.run(document.querySelector(arguments[0]), {resultTypes: ['violations'], rules},
          (err, res) => done(err ? {error: String(err)} : {violations: res.violations}));
        """,
        context,
        list(OUTDATED_IN_AXE_3),
    )
    assert "error" not in result, result
    return result


def serious_violations(page: Browser, context: str = "body") -> list[str]:
    """Serious or critical axe-core violations on the page, one line each."""
    out = []
    for v in run_axe(page, context)["violations"]:
        if v.get("impact") in SERIOUS:
            targets = [", ".join(n.get("target", [])) for n in v.get("nodes", [])[:3]]
            out.append(f"{v['id']} ({v['impact']}): {v['help']} — {targets}")
    return out
