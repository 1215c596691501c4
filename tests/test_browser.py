"""The page at `/` in a real headless Chromium, driven by Playwright: SPEC's manual checklist.

Each step saves a screenshot under tests/artifacts/browser/. Without Chromium these tests skip
with a one-line reason; CI installs Debian's chromium so they run there.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.core.catalog import Action
from app.db.actions import upsert_actions
from tests.support.server_process import ServerProcess
from tests.support.tcp_proxy import TcpProxy

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="no Chromium (apt-get install chromium)"
    ),
]

# Sixteen one-time actions, so fifteen rapid clicks each hit a different action.
BROWSER_ACTIONS = [Action(f"quiz_{i:02d}", f"Quiz {i:02d}", 10) for i in range(1, 17)] + [
    Action("level_1", "Level 1", 50),
    Action("boss", "Boss", 100),
    # One of each kind a player cannot simply claim.
    Action(
        "trivia",
        "Trivia",
        20,
        verification="quiz",
        questions=("Capital of France?", "Two plus two?"),
        answers=("Paris", "4"),
    ),
    Action("raid", "Raid cleared", 60, verification="receipt"),
    Action("champion", "Season champion", 100, verification="server"),
]
# Messages Chromium logs by itself while the server is away on purpose.
EXPECTED_NOISE = re.compile(
    r"WebSocket connection to .* failed|Failed to load resource|ERR_CONNECTION_REFUSED"
)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        await launched.close()


@pytest.fixture
def shots(
    artifacts_dir: Path, request: pytest.FixtureRequest
) -> Callable[[object, str], Awaitable[None]]:
    folder = artifacts_dir / "browser"
    folder.mkdir(exist_ok=True)
    prefix = request.node.name.removeprefix("test_")

    async def shot(page, step: str) -> None:  # type: ignore[no-untyped-def]
        await page.screenshot(path=str(folder / f"{prefix}--{step}.png"), full_page=True)

    return shot


@pytest.fixture
async def server_env(service_env: dict[str, str], db, redis) -> dict[str, str]:  # type: ignore[no-untyped-def]
    await upsert_actions(db, BROWSER_ACTIONS)
    # Short heartbeats, so the page proves it answers them during the tests.
    return {**service_env, "WS_PING_INTERVAL_SECONDS": "2", "WS_PONG_TIMEOUT_SECONDS": "2"}


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> AsyncIterator[ServerProcess]:  # type: ignore[misc]
    with ServerProcess(server_env, tmp_path) as running:
        yield running


class Tab:
    """One browser context (its own storage, like another person's browser) with one page."""

    def __init__(self, context, page) -> None:  # type: ignore[no-untyped-def]
        self.context = context
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def _console(self, message) -> None:  # type: ignore[no-untyped-def]
        if message.type in ("error", "warning") and not EXPECTED_NOISE.search(message.text):
            self.problems.append(f"console {message.type}: {message.text}")

    async def sign_up(self, username: str, password: str = "password123") -> None:
        await self.page.fill("#username", username)
        await self.page.fill("#password", password)
        await self.page.click("#signup-button")
        await self.page.wait_for_selector("#signed-in:not([hidden])")
        await self.wait_for_connection("Live")

    async def wait_for_connection(self, text: str, timeout: float = 15_000) -> None:
        await self.page.wait_for_function(
            "text => document.getElementById('connection').textContent.startsWith(text)",
            arg=text,
            timeout=timeout,
        )

    async def board(self) -> list[tuple[str, str, str]]:
        rows = await self.page.query_selector_all("#board-rows tr[data-user-id]")
        return [
            tuple(
                [(await c.text_content() or "").strip() for c in await row.query_selector_all("td")]
            )
            for row in rows
        ]  # type: ignore[misc]

    async def wait_for_board(
        self, expected: list[tuple[str, str, str]], timeout: float = 10.0
    ) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while (current := await self.board()) != expected:
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"board shows {current}, expected {expected}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def open_tab(browser, server: ServerProcess) -> AsyncIterator[Callable[..., Awaitable[Tab]]]:  # type: ignore[no-untyped-def]
    tabs: list[Tab] = []

    async def open_(url: str | None = None, **context_options: object) -> Tab:
        context = await browser.new_context(**context_options)
        page = await context.new_page()
        tab = Tab(context, page)
        await page.goto(url or f"{server.base_url}/")
        tabs.append(tab)
        return tab

    yield open_
    problems = [p for tab in tabs for p in tab.problems]
    for tab in tabs:
        await tab.context.close()
    assert problems == [], "the page logged errors"


async def api_user(server: ServerProcess, username: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await http.post(
            "/api/auth/register", json={"username": username, "password": "password123"}
        )
        tokens = (
            await http.post(
                "/api/auth/login", json={"username": username, "password": "password123"}
            )
        ).json()
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


async def api_complete(
    server: ServerProcess, headers: dict[str, str], action_id: str
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.post(
            "/api/action/complete", json={"actionId": action_id}, headers=headers
        )


async def test_board_shows_ranking_order_and_shared_ranks(server, open_tab, shots) -> None:
    scores = {
        "ada": ["boss"],
        "grace": ["level_1", "quiz_01"],
        "linus": ["level_1", "quiz_02"],
        "alan": ["level_1"],
    }
    for name, actions in scores.items():
        headers = await api_user(server, name)
        for action in actions:
            assert (await api_complete(server, headers, action)).status_code == 200

    tab = await open_tab()
    await tab.wait_for_board(
        [("1", "ada", "100"), ("2", "grace", "60"), ("2", "linus", "60"), ("4", "alan", "50")]
    )
    await shots(tab.page, "board")
    assert await tab.page.text_content("#updated-at") != "—"


async def test_an_action_in_one_tab_shows_up_in_another_without_reload(
    server, open_tab, shots
) -> None:
    first, second = await open_tab(), await open_tab()
    await first.sign_up("player_one")
    await second.sign_up("player_two")

    await first.page.click("button[data-action-id='boss']")

    await second.wait_for_board([("1", "player_one", "100")])
    await first.page.wait_for_selector("text=+100 points")
    assert await first.page.text_content("#me-rank") == "#1"
    await shots(first.page, "tab-one")
    await shots(second.page, "tab-two")
    # The second tab announces the change politely to screen readers.
    assert "player_one is now rank 1" in (await second.page.text_content("#board-announcer") or "")


async def test_a_duplicate_completion_is_shown_as_done(server, open_tab, shots) -> None:
    tab = await open_tab()
    await tab.sign_up("repeat_player")
    # The same player completes the action elsewhere (another device), so this page's button
    # is still enabled when clicked.
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        tokens = (
            await http.post(
                "/api/auth/login", json={"username": "repeat_player", "password": "password123"}
            )
        ).json()
    await api_complete(server, {"Authorization": f"Bearer {tokens['accessToken']}"}, "quiz_01")

    await tab.page.click("button[data-action-id='quiz_01']")

    await tab.page.wait_for_selector("text=You already completed")
    await tab.page.wait_for_selector("button[data-action-id='quiz_01']:disabled")
    assert "Done" in (await tab.page.text_content("button[data-action-id='quiz_01']") or "")
    await shots(tab.page, "duplicate")


async def test_fifteen_rapid_clicks_give_ten_points_and_a_countdown(
    server, open_tab, shots, db: asyncpg.Connection
) -> None:
    tab = await open_tab()
    await tab.sign_up("clicker")

    await tab.page.evaluate(
        "() => { for (let i = 1; i <= 15; i++) document.querySelector(`button[data-action-id='quiz_${String(i).padStart(2, '0')}']`).click(); }"
    )

    countdown = tab.page.locator("#rate-limit-message")
    await countdown.filter(
        has_text=re.compile(r"Slow down! You can score again in \d+ s")
    ).wait_for()
    first = await countdown.text_content()
    await tab.page.wait_for_function(
        "first => document.getElementById('rate-limit-message').textContent !== first",
        arg=first,
        timeout=5000,
    )
    seconds = [
        int(n) for n in re.findall(r"in (\d+) s", f"{first} {await countdown.text_content()}")
    ]
    assert seconds[1] < seconds[0]
    # Every answer is in once ten actions show as done; then the database must agree.
    await tab.page.wait_for_function(
        "() => document.querySelectorAll('#actions button.done').length === 10"
    )
    await shots(tab.page, "rate-limited")
    assert await db.fetchval("SELECT count(*) FROM score_history") == 10
    assert await db.fetchval("SELECT score FROM users WHERE username = 'clicker'") == 100
    assert await tab.page.is_disabled("button[data-action-id='quiz_16']")


async def test_the_page_recovers_after_the_server_restarts(server, open_tab, shots) -> None:
    tab = await open_tab()
    await tab.sign_up("survivor")

    server.stop()
    await tab.wait_for_connection("Reconnecting in")
    await shots(tab.page, "reconnecting")
    server.start()

    await tab.wait_for_connection("Live", timeout=40_000)
    await tab.page.click("button[data-action-id='level_1']")
    await tab.wait_for_board([("1", "survivor", "50")])
    await shots(tab.page, "recovered")


async def test_the_page_recovers_after_a_dropped_connection(server, open_tab, shots) -> None:
    proxy = TcpProxy("127.0.0.1", server.port)
    await proxy.start()
    try:
        tab = await open_tab(f"http://127.0.0.1:{proxy.port}/")
        await tab.sign_up("roamer")

        await proxy.cut()
        await tab.wait_for_connection("Reconnecting in")
        await proxy.restore()

        await tab.wait_for_connection("Live", timeout=40_000)
        await shots(tab.page, "back-live")
    finally:
        await proxy.cut()


async def test_an_invalid_stored_token_returns_to_the_login_form(server, open_tab, shots) -> None:
    tab = await open_tab()
    await tab.page.evaluate("() => sessionStorage.setItem('refreshToken', 'forged-token')")
    await tab.page.reload()
    await tab.page.wait_for_selector("#signed-out:not([hidden])")
    await tab.wait_for_connection("Updates every 5 s")
    assert await tab.page.evaluate("() => sessionStorage.getItem('refreshToken')") is None
    await shots(tab.page, "login-form")


async def test_tokens_live_only_in_this_origin(server, open_tab) -> None:
    tab = await open_tab()
    await tab.sign_up("careful")
    cookies = await tab.context.cookies()
    local = await tab.page.evaluate("() => JSON.stringify(localStorage)")
    assert cookies == [] and json.loads(local) == {}
    response = await tab.page.request.get(f"{server.base_url}/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


async def test_an_expired_access_token_is_refreshed_and_the_action_retried(
    server_env, tmp_path, browser, shots
) -> None:
    with ServerProcess({**server_env, "ACCESS_TOKEN_TTL_SECONDS": "2"}, tmp_path) as short_lived:
        context = await browser.new_context()
        page = await context.new_page()
        tab = Tab(context, page)
        await page.goto(f"{short_lived.base_url}/")
        await tab.sign_up("patient")
        await asyncio.sleep(2.5)  # the access token's whole lifetime: it has now expired

        await page.click("button[data-action-id='quiz_01']")

        await page.wait_for_selector("text=+10 points")
        assert await page.is_visible("#signed-in")
        await shots(page, "refreshed")
        await context.close()
        assert tab.problems == []


async def test_the_page_fits_a_phone(server, open_tab, shots) -> None:
    tab = await open_tab(viewport={"width": 390, "height": 844})
    await tab.sign_up("pocket")
    await tab.page.click("button[data-action-id='boss']")
    await tab.wait_for_board([("1", "pocket", "100")])
    width = await tab.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390
    await shots(tab.page, "phone")


async def test_the_page_works_by_keyboard(server, open_tab) -> None:
    tab = await open_tab()
    await tab.page.focus("#username")
    await tab.page.keyboard.type("keys_only")
    await tab.page.keyboard.press("Tab")
    await tab.page.keyboard.type("password123")
    await tab.page.keyboard.press("Tab")  # Log in
    await tab.page.keyboard.press("Tab")  # Sign up
    await tab.page.keyboard.press("Enter")
    await tab.page.wait_for_selector("#signed-in:not([hidden])")
    await tab.page.focus("button[data-action-id='level_1']")
    await tab.page.keyboard.press("Enter")
    await tab.page.wait_for_selector("text=+50 points")


async def test_without_a_live_connection_the_page_polls_and_the_board_still_moves(
    server_env, tmp_path, browser, shots
) -> None:
    # One live slot on this node: the first tab takes it, the second is refused (503) and
    # must fall back to polling GET /api/leaderboard.
    with ServerProcess({**server_env, "WS_MAX_CONNECTIONS": "1"}, tmp_path) as single_slot:
        tabs = []
        for name in ("holder", "poller"):
            context = await browser.new_context()
            page = await context.new_page()
            tab = Tab(context, page)
            await page.goto(f"{single_slot.base_url}/")
            await page.fill("#username", name)
            await page.fill("#password", "password123")
            await page.click("#signup-button")
            await page.wait_for_selector("#signed-in:not([hidden])")
            tabs.append(tab)
        holder, poller = tabs
        await holder.wait_for_connection("Live")
        await poller.wait_for_connection("Reconnecting in")

        await holder.page.click("button[data-action-id='boss']")

        await poller.wait_for_board([("1", "holder", "100")], timeout=15)
        await shots(poller.page, "polled")
        for tab in tabs:
            await tab.context.close()
        assert [problem for tab in tabs for problem in tab.problems] == []


async def test_a_quiz_opens_a_form_and_scores_only_right_answers(server, open_tab, shots) -> None:
    tab = await open_tab()
    await tab.sign_up("quizzer")
    page = tab.page

    await page.click("button[data-action-id='trivia']")

    await page.wait_for_selector("#quiz[open]")
    assert await page.text_content("#quiz-title") == "Trivia"
    assert await page.text_content("label[for='quiz-answer-0']") == "Capital of France?"
    assert await page.text_content("label[for='quiz-answer-1']") == "Two plus two?"
    await page.fill("#quiz-answer-0", "Lyon")
    await page.fill("#quiz-answer-1", "4")
    await page.click("#quiz-submit")
    await page.wait_for_selector("#quiz-message:has-text('Not quite')")
    assert await page.is_visible("#quiz")
    assert await page.text_content("#me-score") == "0"
    await shots(page, "quiz-wrong")

    await page.fill("#quiz-answer-0", " paris ")
    await page.click("#quiz-submit")

    await page.wait_for_selector("text=+20 points")
    await page.wait_for_selector("#quiz:not([open])", state="attached")
    assert await page.text_content("#me-score") == "20"
    assert "Done" in (await page.text_content("button[data-action-id='trivia']") or "")
    await shots(page, "quiz-right")


async def test_game_earned_actions_are_labelled_and_cannot_be_pressed(
    server, open_tab, shots
) -> None:
    tab = await open_tab()
    await tab.sign_up("gamer")
    page = tab.page
    for action_id in ("raid", "champion"):
        shown = page.locator(f"#actions [data-action-id='{action_id}']")
        assert await shown.count() == 1
        assert "earned in game" in (await shown.text_content() or "")
        assert await page.locator(f"button[data-action-id='{action_id}']").count() == 0
    await shots(page, "earned-in-game")


async def test_log_out_and_log_out_everywhere_return_to_the_login_form(
    server, open_tab, shots
) -> None:
    tab = await open_tab()
    await tab.sign_up("leaver")
    page = tab.page
    refresh_token = await page.evaluate("() => sessionStorage.getItem('refreshToken')")

    async with page.expect_request("**/api/auth/logout") as logout:
        await page.click("#logout-button")
    assert json.loads((await logout.value).post_data or "{}") == {"refreshToken": refresh_token}
    await page.wait_for_selector("#signed-out:not([hidden])")
    assert await page.evaluate("() => sessionStorage.getItem('refreshToken')") is None

    await page.fill("#username", "leaver")
    await page.fill("#password", "password123")
    await page.click("#login-button")
    await page.wait_for_selector("#signed-in:not([hidden])")

    async with page.expect_request("**/api/auth/logout-all") as logout_all:
        await page.click("#logout-all-button")
    headers = await (await logout_all.value).all_headers()
    assert headers["authorization"].startswith("Bearer ")
    await page.wait_for_selector("#signed-out:not([hidden])")
    assert "every device" in (await page.text_content("#auth-message") or "")
    await shots(page, "logged-out-everywhere")
