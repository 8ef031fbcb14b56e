"""A minimal axe-core accessibility check for the web page's tests.

axe-core comes from the same local file as :mod:`tests.web.axe` (the
``axe-playwright-python`` dev dependency ships ``axe.min.js``, axe-core 4); it is injected
into the page with the Chrome
DevTools protocol (``Runtime.evaluate``, which the page's strict CSP does not apply to),
then run with ``axe.run``. No network.

:func:`serious_violations` returns the violations of impact ``serious`` or ``critical`` as
short lines (rule id, impact, help, the first offending selectors) for an assertion message.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from tests.web.axe import axe_source as _axe_source
from tests.web.harness import Browser

__all__ = ["axe_source", "run_axe", "serious_violations"]

SERIOUS = frozenset({"serious", "critical"})

OUTDATED_IN_AXE_3 = ("dlitem", "definition-list")
"""Rules that axe-core 3.x (the wheel for Python 3.11) applies by HTML 5.1: they reject
``<div>`` groups of ``<dt>``/``<dd>`` in a ``<dl>``, which HTML 5.2 allows and axe-core 4
accepts. Turned off only under axe-core 3."""


@cache
def axe_source() -> str:
    """The text of ``axe.min.js`` (one source for all web tests: ``tests.web.axe``)."""
    return _axe_source()


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
