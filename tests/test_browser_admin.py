"""The admin console at /admin in a real headless Chromium: every task an operator does,
through the page, against a real server. Screenshots (light and dark) go to
tests/artifacts/admin/ (printed); two reference ones are kept in docs/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.db import admin as db_admin
from tests.support.server_process import ServerProcess
from tests.test_browser import (
    CHROMIUM,
    EXPECTED_NOISE,
    api_complete,
    api_user,
    browser,
    server,
    server_env,
)

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="no Chromium (apt-get install chromium)"
    ),
]

# The page tests' fixtures (a Chromium, a server process), shared rather than copied.
SHARED_FIXTURES = (browser, server, server_env)
DOCS_SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


@pytest.fixture
def admin_shots(artifacts_dir: Path) -> Callable[[object, str], Awaitable[None]]:
    folder = artifacts_dir / "admin"
    folder.mkdir(exist_ok=True)
    print(f"admin console screenshots: {folder}")

    async def shot(page, step: str) -> None:  # type: ignore[no-untyped-def]
        await page.screenshot(path=str(folder / f"{step}.png"), full_page=True)

    return shot


@pytest.fixture
async def console(
    browser, server: ServerProcess
) -> AsyncIterator[Callable[..., Awaitable[object]]]:  # type: ignore[no-untyped-def]
    """Open /admin in a fresh context (``color_scheme`` light or dark); page errors fail."""
    contexts, problems = [], []

    async def open_(color_scheme: str = "light"):  # type: ignore[no-untyped-def]
        context = await browser.new_context(
            color_scheme=color_scheme, viewport={"width": 1280, "height": 900}
        )
        page = await context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda m: (
                problems.append(f"console {m.type}: {m.text}")
                if m.type == "error"
                and not EXPECTED_NOISE.search(m.text)
                and "status of 4" not in m.text  # the API's refusals the page shows on purpose
                else None
            ),
        )
        await page.goto(f"{server.base_url}/admin")
        contexts.append(context)
        return page

    yield open_
    for context in contexts:
        await context.close()
    assert problems == [], "the admin page logged errors"


async def sign_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    await page.fill("#login-username", username)
    await page.fill("#login-password", "password123")
    await page.click("#login-form button[type=submit]")


async def make_admin(running: ServerProcess, db, name: str) -> None:  # type: ignore[no-untyped-def]
    await api_user(running, name)
    await db_admin.set_role(db, name, "admin")


def utc_input(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


async def wait_text(page, selector: str, text: str) -> None:  # type: ignore[no-untyped-def]
    await page.wait_for_function(
        "([s, t]) => (document.querySelector(s)?.textContent || '').includes(t)",
        arg=[selector, text],
        timeout=10_000,
    )


async def test_every_admin_task_through_the_page(server, db, console, admin_shots) -> None:  # type: ignore[no-untyped-def]
    await make_admin(server, db, "chief")
    cheater = await api_user(server, "cheater")
    for action in ("quiz_01", "level_1", "boss"):
        assert (await api_complete(server, cheater, action)).status_code == 200
    honest = await api_user(server, "honest")
    assert (await api_complete(server, honest, "quiz_02")).status_code == 200

    page = await console("light")
    await sign_in(page, "chief")
    await page.wait_for_selector("#console:not([hidden])")
    await wait_text(page, "#who-name", "chief")

    # Find a user and see their history.
    await page.fill("#search-query", "chea")
    await page.click("#search-form button[type=submit]")
    await page.click("#search-results button:has-text('cheater')")
    await wait_text(page, "#player-name", "cheater")
    await wait_text(page, "#player-facts", "score 160")
    assert await page.locator("#history-rows tr").count() == 3

    # An error from the API shows its code and message: no reason given.
    await page.fill("#adjust-points", "-10")
    await page.click("#adjust")
    await page.wait_for_selector("#status:not([hidden])")
    assert "VALIDATION_ERROR" in (await page.text_content("#status") or "")

    # Adjust, with a reason.
    await page.fill("#reason", "bug bounty overpaid")
    await page.click("#adjust")
    await wait_text(page, "#notice", "Adjusted cheater by -10")
    await wait_text(page, "#player-facts", "score 150")
    await wait_text(page, "#search-results", "cheater · 150")  # the list follows the change
    await admin_shots(page, "players-light")

    # Remove one completion (the boss, 100 points).
    await page.fill("#reason", "boss kill was an exploit")
    await page.click("#history-rows tr:has-text('Boss') button:has-text('Remove')")
    await wait_text(page, "#notice", "Removed Boss")
    await wait_text(page, "#player-facts", "score 50")

    # Ban, then unban.
    await page.fill("#reason", "cheating")
    await page.click("#ban")
    await page.wait_for_selector("#player-ban-state:not([hidden])")
    await wait_text(page, "#notice", "cheater is banned")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        refused = await http.post(
            "/api/auth/login", json={"username": "cheater", "password": "password123"}
        )
    assert refused.status_code == 403
    await page.fill("#reason", "appeal accepted")
    await page.click("#unban")
    await page.wait_for_selector("#player-ban-state", state="hidden")
    await wait_text(page, "#notice", "no longer banned")

    # Boards: create a tournament, rename it, end it.
    await page.click("[data-tab=boards]")
    await page.wait_for_selector("#board-rows tr[data-id=daily]")
    now = datetime.now(UTC)
    await page.fill("#board-id", "winter-cup")
    await page.fill("#board-name", "Winter cup")
    await page.select_option("#board-window", "tournament")
    await page.fill("#board-starts", utc_input(now - timedelta(hours=1)))
    await page.fill("#board-ends", utc_input(now + timedelta(days=3)))
    await page.click("#board-submit")
    await wait_text(page, "#notice", "Created board winter-cup (open)")
    await page.wait_for_selector("#board-rows tr[data-id=winter-cup]")
    await page.click("#board-rows tr[data-id=winter-cup] button:has-text('Edit')")
    await page.fill("#board-name", "Winter cup 2026")
    await page.click("#board-submit")
    await wait_text(page, "#board-rows tr[data-id=winter-cup]", "Winter cup 2026")
    # A refused board shows the API's error.
    await page.fill("#board-id", "Bad Id")
    await page.fill("#board-name", "x")
    await page.select_option("#board-window", "day")
    await page.fill("#board-starts", "")
    await page.fill("#board-ends", "")
    await page.click("#board-submit")
    await wait_text(page, "#status", "VALIDATION_ERROR")
    await wait_text(page, "#status", "boardId")
    await page.click("#board-rows tr[data-id=winter-cup] button:has-text('End')")
    await wait_text(page, "#board-rows tr[data-id=winter-cup]", "ended")
    await admin_shots(page, "boards-light")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        public = (await http.get("/api/boards")).json()
    assert "winter-cup" not in [b["boardId"] for b in public["boards"]]

    # Catalog: create, edit, deactivate.
    await page.click("[data-tab=catalog]")
    await page.wait_for_selector("#action-rows tr[data-id=boss]")
    await page.fill("#action-id", "quiz_99")
    await page.fill("#action-name", "Capitals")
    await page.fill("#action-points", "20")
    await page.select_option("#action-verification", "quiz")
    await page.fill("#action-tags", "quiz, geo")
    await page.fill("#action-questions", "Capital of France?")
    await page.fill("#action-answers", "Paris")
    await page.click("#action-submit")
    await wait_text(page, "#notice", "Created action quiz_99 (20 points)")
    await page.wait_for_selector("#action-rows tr[data-id=quiz_99]")
    await page.click("#action-rows tr[data-id=quiz_99] button:has-text('Edit')")
    await page.fill("#action-points", "30")
    await page.click("#action-submit")
    await wait_text(page, "#action-rows tr[data-id=quiz_99]", "30")
    await page.click("#action-rows tr[data-id=quiz_99] button:has-text('Deactivate')")
    await wait_text(page, "#action-rows tr[data-id=quiz_99]", "inactive")
    await admin_shots(page, "catalog-light")

    # The audit log holds every one of those changes.
    await page.click("[data-tab=audit]")
    await page.wait_for_selector("#audit-rows tr")
    log = await page.text_content("#audit-rows") or ""
    for verb in (
        "score.adjust",
        "completion.remove",
        "user.ban",
        "user.unban",
        "board.create",
        "board.edit",
        "board.end",
        "action.create",
        "action.edit",
        "action.deactivate",
    ):
        assert verb in log, verb
    assert "Paris" not in log  # the answer key never reaches the log
    await admin_shots(page, "audit-light")

    # Analytics as charts.
    await page.click("[data-tab=analytics]")
    await page.wait_for_selector("#chart-daily svg rect.bar", state="attached")
    assert await page.locator("#chart-hourly svg polyline.line").count() == 1
    assert await page.locator("#chart-daily svg rect.bar").count() == 30
    assert await page.locator("#chart-daily svg polyline.second").count() == 1
    assert await page.locator("#chart-actions svg rect.bar").count() >= 2
    assert await page.locator("#chart-scores svg rect.bar").count() >= 2
    assert await page.locator("#chart-registrations svg rect.bar").count() == 30
    assert await page.locator("#chart-live svg rect.bar").count() >= 1
    kpis = await page.text_content("#kpis") or ""
    assert "active today (DAU)" in kpis and "players" in kpis
    await page.select_option("#analytics-days", "7")
    await page.wait_for_function(
        "() => document.querySelectorAll('#chart-daily svg rect.bar').length === 7"
    )
    await page.select_option("#analytics-days", "30")
    await page.wait_for_function(
        "() => document.querySelectorAll('#chart-daily svg rect.bar').length === 30"
    )
    await admin_shots(page, "analytics-light")

    # The same in dark.
    dark = await console("dark")
    await sign_in(dark, "chief")
    await dark.wait_for_selector("#console:not([hidden])")
    await dark.click("[data-tab=analytics]")
    await dark.wait_for_selector("#chart-daily svg rect.bar", state="attached")
    background = await dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 20, 27)"
    await admin_shots(dark, "analytics-dark")
    await dark.click("[data-tab=players]")
    await dark.fill("#search-query", "cheater")
    await dark.click("#search-form button[type=submit]")
    await dark.click("#search-results button:has-text('cheater')")
    await wait_text(dark, "#player-name", "cheater")
    await admin_shots(dark, "players-dark")
    DOCS_SHOTS.mkdir(exist_ok=True)
    folder = Path(__file__).parent / "artifacts" / "admin"
    for name in ("analytics-light", "analytics-dark"):
        shutil.copyfile(folder / f"{name}.png", DOCS_SHOTS / f"admin-{name}.png")


async def test_a_player_gets_forbidden_and_no_console(server, console) -> None:  # type: ignore[no-untyped-def]
    await api_user(server, "mere_player")
    page = await console("light")
    await sign_in(page, "mere_player")
    await wait_text(page, "#status", "FORBIDDEN")
    assert await page.is_hidden("#console")


async def test_admin_page_has_the_strict_policy(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page, root = await http.get("/admin"), await http.get("/")
        assert page.status_code == 200
        assert page.headers["Content-Security-Policy"] == root.headers["Content-Security-Policy"]
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        # Assets by content hash, no inline script or style.
        assert "/static/admin.js?v=" in page.text and "/static/admin.css?v=" in page.text
        assert "<script>" not in page.text and "style=" not in page.text
        script = await http.get("/static/admin.js")
        assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
