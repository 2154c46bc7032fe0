"""The dashboard in headless Chromium against a live worker with orders flowing, on a desktop
and on a phone: it updates live, takes orders, fits the screen and breaks no CSP rule.

``EXCHANGE_SCREENSHOTS=1`` writes README's screenshots (``docs/dashboard.png``,
``docs/dashboard-phone.png``); otherwise they go to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright

from exchange_app.orderflow import seed_orders
from tests.harness import ROOT, api_key, produce

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}

#: Every CSP violation, seen by the page itself (the console may word it differently).
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
    + ` at ${e.sourceFile}:${e.lineNumber}`));
"""

#: Elements that reach past the viewport's edges, panels that scroll sideways (a book whose
#: prices are out of sight), and a page that does.
OVERFLOWING = """
() => {
  const width = document.documentElement.clientWidth;
  const name = (e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}`;
  const wide = [...document.querySelectorAll("body *")].map((e) => [e, e.getBoundingClientRect()])
    .filter(([, box]) => box.width > 0 && (box.left < -0.5 || box.right > width + 0.5))
    .map(([e, box]) => `${name(e)} ${Math.round(box.left)}..${Math.round(box.right)}`);
  for (const panel of document.querySelectorAll("section")) {
    if (panel.scrollWidth > panel.clientWidth + 1) wide.push(`${name(panel)} scrolls sideways`);
  }
  const page = document.documentElement.scrollWidth;
  if (page > width) wide.push(`the page is ${page}px wide`);
  return wide;
}
"""

#: Controls whose text does not fit them (a blank select, a clipped "Send ord").
CLIPPED = """
(selector) => [...document.querySelectorAll(selector)].filter((e) => {
  if (e.tagName === "SELECT") {
    const measure = document.createElement("canvas").getContext("2d");
    measure.font = getComputedStyle(e).font;
    const text = measure.measureText(e.selectedOptions[0].text).width;
    return e.clientWidth < text + 24;  // and the arrow
  }
  return e.scrollWidth > e.clientWidth;
}).map((e) => e.name || e.id || e.textContent)
"""


@dataclass
class Console:
    """What the page says is wrong: console errors, uncaught exceptions."""

    errors: list[str] = field(default_factory=list)

    def message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def exception(self, error: Any) -> None:
        self.errors.append(f"uncaught: {error}")

    async def assert_clean(self, page: Page) -> None:
        assert await page.evaluate("window.cspViolations") == []
        assert self.errors == []


async def order_flow(env: dict[str, str]) -> None:
    """The seed stream for TCS, a few orders a second, until cancelled."""
    stream = seed_orders(
        clock=lambda: datetime.now(UTC), seed=4, instruments=["TCS"], accounts=["alice", "bob"]
    )
    while True:
        await produce(env, list(itertools.islice(stream, 5)))
        await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def dashboard(
    env: dict[str, str], viewport: dict[str, int], scale: float
) -> AsyncIterator[tuple[Page, Console]]:
    """A page of the dashboard at ``viewport`` (CSS pixels, ``scale`` device pixels each),
    orders flowing, every console error and CSP violation recorded."""
    flow = asyncio.create_task(order_flow(env))
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            context = await browser.new_context(
                viewport=viewport,
                device_scale_factor=scale,
                is_mobile=scale > 1,
                has_touch=scale > 1,
            )
            await context.add_init_script(WATCH_CSP)
            page = await context.new_page()
            console = Console()
            page.on("console", console.message)
            page.on("pageerror", console.exception)
            await page.goto(f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}/")
            await page.wait_for_selector("#status.online", timeout=30_000)
            yield page, console
            await browser.close()
    finally:
        flow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flow


async def sign_in(page: Page, key: str, account: str) -> None:
    await page.fill("#key", key)
    await page.click("#key-form button[type=submit]")
    await page.wait_for_selector(f"#who:text('{account}')", timeout=10_000)
    assert await page.input_value("#account") == account


async def chart_drawn(page: Page, bars: int) -> None:
    """At least ``bars`` bars on the chart, drawn at its CSS size times the pixel ratio."""
    await page.wait_for_function(
        "(bars) => document.querySelectorAll('#legend .series').length >= 3"
        " && state.bars.length + (state.open ? 1 : 0) >= bars",
        arg=bars,
        timeout=60_000,
    )
    size = await page.evaluate(
        "() => { const c = document.querySelector('#chart');"
        " return [c.width, c.height, Math.round(c.clientWidth * devicePixelRatio),"
        " Math.round(c.clientHeight * devicePixelRatio)]; }"
    )
    assert size[:2] == size[2:]


def screenshot(tmp_path: Path, name: str) -> Path:
    """README's screenshot when asked for, otherwise a scratch one."""
    folder = ROOT / "docs" if os.environ.get("EXCHANGE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@pytest.fixture()
def fast_bars(env: dict[str, str]) -> dict[str, str]:
    """Two-second bars, as ``make run`` has them, so that the chart fills while we look."""
    env["EXCHANGE_BAR_SECONDS"] = "2"
    return env


async def test_dashboard_updates_live_and_takes_orders(
    fast_bars: dict[str, str], start_worker, tmp_path: Path
) -> None:
    env = fast_bars
    start_worker(env)
    base = f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}"
    key = await api_key(env, "alice", admin=False, known_at=[base])  # the page asks once
    async with dashboard(env, DESKTOP, 1) as (page, console):
        # market data flows before signing in; the account panel waits for a key
        assert await page.input_value("#account") == ""
        await console.assert_clean(page)
        await page.fill("#key", "ek_000000000000_" + "A" * 43)
        await page.click("#key-form button[type=submit]")
        await page.wait_for_selector("#who:text('unknown key')", timeout=10_000)
        # the browser reports the refused key as a failed request: that one is expected
        assert [e for e in console.errors if "401" not in e or "/whoami" not in e] == []
        console.errors.clear()
        await sign_in(page, key, "alice")
        assert "ek_" not in await page.content()  # the key is not shown back
        first = page.locator("#tape tbody tr").first
        await first.wait_for(timeout=60_000)
        seen = await first.get_attribute("data-trade-id")
        # a new trade appears at the top of the tape without a reload
        await page.wait_for_function(
            "(seen) => { const row = document.querySelector('#tape tbody tr');"
            " return row && row.dataset.tradeId !== seen; }",
            arg=seen,
            timeout=60_000,
        )
        assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1

        # an order sent through the ticket rests in the book
        await page.select_option("#ticket select[name=trxn_type]", "BUY")
        await page.fill("#ticket input[name=quantity]", "7")
        await page.fill("#ticket input[name=price]", "9.25")  # below every bid: it rests
        await page.click("#ticket button[type=submit]")
        await page.wait_for_selector("#ticket-result[data-order-id]:not([data-order-id=''])")
        row = page.locator("#book tbody tr[data-bid='9.25']")
        await row.wait_for(timeout=30_000)
        assert await row.get_attribute("data-bid-quantity") == "7"

        # VWAP, close and each SMA in colours of their own, on the legend as on the chart
        await chart_drawn(page, bars=8)
        colours = await page.eval_on_selector_all(
            "#legend .series", "(spans) => spans.map((s) => getComputedStyle(s).color)"
        )
        assert len(set(colours)) == len(colours) >= 3
        assert await page.evaluate(OVERFLOWING) == []
        await page.wait_for_function("document.querySelectorAll('#positions tbody tr').length")
        await console.assert_clean(page)
        shot = screenshot(tmp_path, "dashboard.png")
        await page.screenshot(path=str(shot), animations="disabled")
    assert shot.stat().st_size > 10_000


async def test_dashboard_fits_a_phone_and_takes_orders_there(
    fast_bars: dict[str, str], start_worker, tmp_path: Path
) -> None:
    env = fast_bars
    start_worker(env)
    base = f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}"
    key = await api_key(env, "alice", admin=False, known_at=[base])
    async with dashboard(env, PHONE, 3) as (page, console):
        key_field = await page.locator("#key").bounding_box()
        assert key_field is not None and key_field["width"] >= 150  # room to paste a key
        assert await page.evaluate(OVERFLOWING) == []
        await sign_in(page, key, "alice")
        await page.locator("#book tbody tr").first.wait_for(timeout=60_000)
        await page.locator("#tape tbody tr").first.wait_for(timeout=60_000)
        await page.wait_for_function("document.querySelectorAll('#positions tbody tr').length")
        await chart_drawn(page, bars=5)
        assert await page.evaluate(OVERFLOWING) == []  # signed in, with a full book and tape

        # the ticket: every control on screen, whole, big enough for a thumb, and it works
        ticket = "#ticket select, #ticket input, #ticket button"
        assert await page.evaluate(CLIPPED, ticket) == []
        for control in await page.locator(ticket).all():
            await control.scroll_into_view_if_needed()
            assert await control.is_visible()
            box = await control.bounding_box()
            assert box is not None and box["height"] >= 36 and box["width"] >= 120
        await page.select_option("#ticket select[name=trxn_type]", "SELL")
        await page.fill("#ticket input[name=quantity]", "3")
        await page.fill("#ticket input[name=price]", "25.5")  # above every ask: it rests
        await page.tap("#ticket button[type=submit]")
        await page.wait_for_selector("#ticket-result[data-order-id]:not([data-order-id=''])")
        row = page.locator("#book tbody tr[data-ask='25.5']")
        await row.wait_for(state="attached", timeout=30_000)  # a phone shows the best ten
        assert await row.get_attribute("data-ask-quantity") == "3"
        assert await page.evaluate(OVERFLOWING) == []
        await console.assert_clean(page)

        await page.evaluate("window.scrollTo(0, 0)")
        shot = screenshot(tmp_path, "dashboard-phone.png")
        await page.screenshot(path=str(shot), animations="disabled")
    assert shot.stat().st_size > 10_000
