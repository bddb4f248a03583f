"""Headless Debian chromium for the tests that open an HTML page (playwright drives it).

Contract: `chromium_page()` yields a `Watched` page of 1280x900 in a browser without network
extras, and records every request it makes and every console error and uncaught page error; the
browser is closed on the way out. `CHROMIUM` is the browser's path, None when it is not installed
(tests skip then).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@dataclass
class Watched:
    page: Any  # playwright.sync_api.Page (imported only when a browser runs)
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@contextmanager
def chromium_page() -> Iterator[Watched]:
    """A watched page in headless chromium (module contract)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            watched = Watched(browser.new_page(viewport={"width": 1280, "height": 900}))
            watched.page.on("request", lambda r: watched.requests.append(r.url))
            watched.page.on("console", lambda m: watched.console_errors.append(m.text) if m.type == "error" else None)
            watched.page.on("pageerror", lambda e: watched.page_errors.append(str(e)))
            yield watched
        finally:
            browser.close()
