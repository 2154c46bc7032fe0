"""The dashboard in headless Chromium against a live worker with orders flowing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

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


async def order_flow(env: dict[str, str]) -> None:
    """The seed stream for TCS, a few orders a second, until cancelled."""
    from datetime import UTC, datetime

    stream = seed_orders(
        clock=lambda: datetime.now(UTC), seed=4, instruments=["TCS"], accounts=["alice", "bob"]
    )
    while True:
        await produce(env, list(itertools.islice(stream, 5)))
        await asyncio.sleep(0.5)


async def test_dashboard_updates_live_and_takes_orders(env, start_worker, tmp_path: Path) -> None:
    start_worker(env)
    base = f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}"
    key = await api_key(env, "alice", admin=False, known_at=[base])  # the page asks once
    flow = asyncio.create_task(order_flow(env))
    screenshot = Path(os.environ.get("EXCHANGE_SCREENSHOT", ROOT / "artifacts" / "dashboard.png"))
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(f"{base}/")
            await page.wait_for_selector("#status.online", timeout=30_000)
            # market data flows before signing in; the account panel waits for a key
            assert await page.input_value("#account") == ""
            await page.fill("#key", "ek_000000000000_" + "A" * 43)
            await page.click("#key-form button[type=submit]")
            await page.wait_for_selector("#who:text('unknown key')", timeout=10_000)
            await page.fill("#key", key)
            await page.click("#key-form button[type=submit]")
            await page.wait_for_selector("#who:text('alice')", timeout=10_000)
            assert await page.input_value("#account") == "alice"
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

            await page.wait_for_timeout(500)
            await page.screenshot(path=str(screenshot))
            await browser.close()
    finally:
        flow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flow
    assert screenshot.stat().st_size > 10_000
