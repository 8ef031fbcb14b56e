"""A real server and a real browser for the web page's tests.

- :class:`LiveServer` serves an app (the :class:`tests.api.rig.ApiRig`'s) with uvicorn on a
  free loopback port in a thread, as ``renkei cloud api`` would.
- :class:`Browser` drives Debian's headless Chromium through Debian's chromedriver
  (selenium, no downloads: both paths are given, so Selenium Manager never runs). Every
  wait is an explicit wait bounded by :data:`WAIT_S`.
- :func:`find_chromium` locates both binaries; without them the tests fail in CI
  (``CI=true``) and skip with the install hint elsewhere.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from harness.services import free_port
from harness.wait import wait_for

__all__ = ["WAIT_S", "Browser", "LiveServer", "find_chromium"]

WAIT_S = 10.0
"""Upper bound of every wait for the page (seconds)."""

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
DRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--password-store=basic",
    "--window-size=1280,1000",
    "--lang=en-US",
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _first(candidates: tuple[str, ...], name: str) -> str | None:
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    return shutil.which(name)


def find_chromium() -> tuple[str, str]:
    """``(chromium, chromedriver)`` paths.

    Fails the test when either is missing and ``CI`` is set (the CI machine must have
    them: ``./dev test`` installs the Debian packages), skips it otherwise.
    """
    chromium = _first(CHROMIUM_CANDIDATES, "chromium")
    driver = _first(DRIVER_CANDIDATES, "chromedriver")
    if chromium and driver:
        return chromium, driver
    missing = [n for n, p in (("chromium", chromium), ("chromium-driver", driver)) if not p]
    msg = (
        f"the web page tests need a real headless Chromium: Debian package(s) "
        f"{', '.join(missing)} not installed (`apt-get install chromium chromium-driver`, "
        f"or run `./dev test`, which installs them)"
    )
    if _in_ci():
        pytest.fail(f"CI=true and {msg}", pytrace=False)
    pytest.skip(msg)


class LiveServer:
    """``app`` served by uvicorn on ``127.0.0.1:<free port>`` in a daemon thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="web-test-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = WAIT_S) -> None:
        """Start serving and wait until uvicorn has bound its socket."""
        self.thread.start()

        def started() -> bool:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn exited during start-up")
            return bool(self.server.started)

        wait_for(started, timeout_s, "uvicorn to start", interval_s=0.01)

    def stop(self, timeout_s: float = WAIT_S) -> None:
        """Ask uvicorn to exit and join its thread."""
        self.server.should_exit = True
        self.thread.join(timeout_s)
        if self.thread.is_alive():  # pragma: no cover - diagnostic
            self.server.force_exit = True
            self.thread.join(timeout_s)


# console messages that are expected when a test provokes an API error on purpose
_EXPECTED_CONSOLE = ("Failed to load resource: the server responded with a status of 4",)


class Browser:
    """One headless Chromium (one tab) for a whole test session."""

    def __init__(self) -> None:
        chromium, driver = find_chromium()
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in CHROMIUM_ARGS:
            options.add_argument(arg)
        options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.page_load_strategy = "normal"
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        self.driver.set_page_load_timeout(WAIT_S * 3)
        self.driver.set_script_timeout(WAIT_S)
        self.base = ""

    def quit(self) -> None:
        self.driver.quit()

    # --- navigation ---------------------------------------------------------------------

    def open(self, base: str, path: str = "/", *, languages: str | None = None) -> None:
        """Load ``base + path`` and wait until the page has started (``html[data-ready]``).

        ``languages`` sets the browser's preferred languages (``navigator.languages``)
        for this and later loads, e.g. ``"ja-JP,ja"``.
        """
        self.base = base
        self.set_languages(languages or "en-US,en")
        self.driver.get(base + path)
        self.wait_for(
            lambda d: d.execute_script("return document.documentElement.dataset.ready") == "true",
            "page start-up",
        )
        self.wait_idle()

    def set_languages(self, accept_language: str) -> None:
        """Set ``Accept-Language`` and ``navigator.language(s)`` (Chrome DevTools protocol)."""
        ua = self.driver.execute_cdp_cmd("Browser.getVersion", {})["userAgent"].replace(
            "HeadlessChrome", "Chrome"
        )
        self.driver.execute_cdp_cmd(
            "Emulation.setUserAgentOverride", {"userAgent": ua, "acceptLanguage": accept_language}
        )

    def reset(self) -> None:
        """Leave the page and forget everything the previous test left behind."""
        self.driver.get("about:blank")
        self.console()  # drop old console messages

    # --- waiting ------------------------------------------------------------------------

    def wait_for(
        self, condition: Callable[[Any], Any], what: str, timeout_s: float = WAIT_S
    ) -> Any:
        """Wait (bounded) until ``condition(driver)`` is truthy; fail saying ``what``."""

        def safe(d: Any) -> Any:
            try:
                return condition(d)
            except StaleElementReferenceException:
                return False

        try:
            return WebDriverWait(self.driver, timeout_s, poll_frequency=0.05).until(safe)
        except TimeoutException:
            raise AssertionError(
                f"timed out after {timeout_s} s waiting for {what}; page text:\n"
                f"{self.text('body')[:2000]}\nconsole: {self.console()}"
            ) from None

    def wait_idle(self) -> None:
        """Wait until no API call of the page is in flight."""
        self.wait_for(
            lambda d: d.execute_script("return !document.documentElement.dataset.busy"),
            "API calls to finish",
        )

    def wait_visible(self, css: str) -> WebElement:
        """Wait until an element matching ``css`` is displayed; returns it."""

        def shown(d: Any) -> WebElement | None:
            for e in d.find_elements(By.CSS_SELECTOR, css):
                if e.is_displayed():
                    return e  # type: ignore[no-any-return]
            return None

        found: WebElement = self.wait_for(shown, f"{css} visible")
        return found

    def wait_text(self, css: str, text: str) -> WebElement:
        """Wait until a visible ``css`` element contains ``text``; returns it."""

        def found(d: Any) -> WebElement | None:
            for e in d.find_elements(By.CSS_SELECTOR, css):
                if e.is_displayed() and text in e.text:
                    return e  # type: ignore[no-any-return]
            return None

        el: WebElement = self.wait_for(found, f"{text!r} in {css}")
        return el

    def wait_view(self, view: str) -> None:
        """Wait until the page shows ``view`` (signin, search, takeovers, assignments)."""
        self.wait_for(
            lambda d: d.execute_script("return document.documentElement.dataset.view") == view,
            f"view {view}",
        )
        self.wait_idle()

    # --- reading ------------------------------------------------------------------------

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        els = self.driver.find_elements(By.CSS_SELECTOR, css)
        return "\n".join(e.text for e in els)

    def visible(self, css: str) -> bool:
        return any(e.is_displayed() for e in self.driver.find_elements(By.CSS_SELECTOR, css))

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def console(self) -> list[dict[str, Any]]:
        """Console messages since the last call (``level``, ``message``)."""
        return list(self.driver.get_log("browser"))  # type: ignore[no-untyped-call]

    def console_problems(self, *, allow_http_errors: bool = False) -> list[str]:
        """Console errors, CSP violations and missing-translation warnings since last call."""
        out = []
        for entry in self.console():
            msg = str(entry.get("message", ""))
            level = str(entry.get("level", ""))
            if allow_http_errors and any(x in msg for x in _EXPECTED_CONSOLE):
                continue
            if level == "SEVERE" or "i18n:" in msg or "Content Security Policy" in msg:
                out.append(f"{level}: {msg}")
        return out

    # --- acting -------------------------------------------------------------------------

    def fill(self, css: str, value: str) -> None:
        el = self.find(css)
        el.clear()
        if value:
            el.send_keys(value)

    def fill_date(self, css: str, iso: str) -> None:
        """Set a ``<input type=date>`` (typing into it depends on the locale's order)."""
        self.js("arguments[0].value = arguments[1];", self.find(css), iso)

    def select(self, css: str, value: str) -> None:
        Select(self.find(css)).select_by_value(value)

    def click(self, css: str) -> None:
        self.wait_visible(css).click()

    def sign_in(self, key: str) -> None:
        """Sign in with ``key`` from the sign-in form and wait for the first view."""
        self.wait_view("signin")
        self.fill("#api-key", key)
        self.click("#signin-submit")
        self.wait_for(
            lambda d: (
                d.execute_script("return document.documentElement.dataset.view") != "signin"
                or d.find_element(By.ID, "error").is_displayed()
            ),
            "sign-in to finish",
        )
        self.wait_idle()
