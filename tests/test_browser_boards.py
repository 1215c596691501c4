"""The page's boards in a real headless Chromium: the switcher, around me, the ranked count,
profiles, past periods, and the two fixes (a rank after dropping out of the top 10; what a
signed-out visitor is told). Screenshots go to tests/artifacts/browser/."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.core.boards import BUILT_IN_BOARDS, new_board
from app.db import boards as db_boards
from app.db.accounts import ensure_user
from app.db.completions import commit_completion
from tests import test_browser as page_tests
from tests.support.cli import run_cli
from tests.support.server_process import ServerProcess
from tests.test_browser import CHROMIUM, api_complete, api_user

# The page's fixtures (Chromium, tabs, screenshots) are those of tests/test_browser.py.
browser = page_tests.browser
open_tab = page_tests.open_tab
shots = page_tests.shots
server_env = page_tests.server_env


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    # Boards made during a test are listed within a second.
    with ServerProcess({**server_env, "CATALOG_REFRESH_SECONDS": "1"}, tmp_path) as running:
        yield running


async def reconciled(server_env: dict[str, str]) -> None:
    """Rows written straight to the database reach Redis through the reconciler (as they
    would after an operator's fix): run it now rather than wait for the nodes' next pass."""
    result = await asyncio.to_thread(run_cli, "reconcile", env=server_env)
    assert result.returncode == 0, result.stderr


async def listed(server: ServerProcess, board_id: str) -> None:
    """Wait until the server lists ``board_id`` (its catalog refreshes every second)."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for _ in range(100):
            boards = (await http.get("/api/boards")).json()["boards"]
            if any(b["boardId"] == board_id for b in boards):
                return
            await asyncio.sleep(0.1)
    pytest.fail(f"{board_id} never listed")


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium"),
]


def week_of(moment: datetime) -> str:
    period = next(b for b in BUILT_IN_BOARDS if b.id == "weekly").period_at(moment)
    assert period is not None
    return period.id


async def test_the_board_switcher_shows_each_board_and_its_time_left(
    server, server_env, open_tab, shots, db: asyncpg.Connection
) -> None:
    now = datetime.now(UTC)
    cup = new_board(
        "spring-cup",
        "Spring cup",
        "tournament",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=5),
    )
    await db_boards.insert_board(db, cup)
    ada = await ensure_user(db, "ada")
    # Last week's points count all time and in last week only.
    await commit_completion(db, ada.user_id, "boss", now - timedelta(days=7))
    headers = await api_user(server, "bea")
    assert (await api_complete(server, headers, "level_1")).status_code == 200
    await reconciled(server_env)

    await listed(server, "spring-cup")
    tab = await open_tab()
    await tab.page.wait_for_selector("#board-tabs [data-board-id='spring-cup']")
    labels = [t.strip() for t in await tab.page.locator("#board-tabs .tab").all_text_contents()]
    assert labels == ["All time", "Today", "This week", "This month", "Spring cup"]
    await tab.wait_for_board([("1", "ada", "100"), ("2", "bea", "50")])

    await tab.page.click("#board-tabs [data-board-id='weekly']")
    await tab.wait_for_board([("1", "bea", "50")])
    info = await tab.page.text_content("#period-info") or ""
    assert info.startswith(week_of(now)) and re.search(r"ends in \d+ (d|h|min)", info)
    assert (
        await tab.page.get_attribute("#board-tabs [data-board-id='weekly']", "aria-selected")
        == "true"
    )

    # The cup began an hour ago: bea's points (scored since) count there, ada's do not.
    await tab.page.click("#board-tabs [data-board-id='spring-cup']")
    await tab.wait_for_board([("1", "bea", "50")])
    assert re.search(
        r"spring-cup · ends in [45] h", await tab.page.text_content("#period-info") or ""
    )
    await shots(tab.page, "tournament")


async def test_a_signed_in_player_outside_the_top_10_sees_their_neighbours(
    server, server_env, open_tab, shots, db: asyncpg.Connection
) -> None:
    # Twelve players ahead: 60 each (level_1 + quiz_01), then the player at 10.
    for i in range(12):
        user = await ensure_user(db, f"ahead_{i:02d}")
        await commit_completion(db, user.user_id, "level_1")
        await commit_completion(db, user.user_id, "quiz_01")
    await reconciled(server_env)
    tab = await open_tab()
    await tab.sign_up("climber")
    await tab.page.click("button[data-action-id='quiz_02']")
    await tab.page.wait_for_selector("#around-me:not([hidden])", timeout=15_000)
    gap = tab.page.locator("#around-gap")
    await gap.filter(has_text="50 points to rank 1").wait_for()
    rows = await tab.page.locator("#around-rows tr").all_text_contents()
    assert any("climber" in r for r in rows) and len(rows) == 3  # two above, none below
    assert await tab.page.text_content("#me-rank") == "#13"
    await tab.page.locator("#board-total").filter(has_text="13 ranked players").wait_for()
    await shots(tab.page, "around-me")


async def test_clicking_a_player_opens_their_profile(server, open_tab, shots) -> None:
    headers = await api_user(server, "profiled")
    for action in ("quiz_01", "level_1"):
        assert (await api_complete(server, headers, action)).status_code == 200
    tab = await open_tab()
    await tab.wait_for_board([("1", "profiled", "60")])
    await tab.page.click("#board-rows button.player")
    dialog = tab.page.locator("#profile")
    await dialog.wait_for(state="visible")
    assert await tab.page.text_content("#profile-name") == "profiled"
    boards = await tab.page.locator("#profile-boards li").all_text_contents()
    assert "All time: rank 1 · 60 points" in boards
    assert "This week: rank 1 · 60 points" in boards
    recent = await tab.page.locator("#profile-recent li").all_text_contents()
    assert recent[0].startswith("Level 1 · +50") and recent[1].startswith("Quiz 01 · +10")
    await shots(tab.page, "profile")
    await tab.page.click("#profile-close")
    await dialog.wait_for(state="hidden")


async def test_a_past_period_can_be_read(server, open_tab, shots, db: asyncpg.Connection) -> None:
    last_week = datetime.now(UTC) - timedelta(days=7)
    old = await ensure_user(db, "old_timer")
    await commit_completion(db, old.user_id, "level_1", last_week)
    tab = await open_tab()
    await tab.page.click("#board-tabs [data-board-id='weekly']")
    await tab.page.wait_for_selector("#periods:not([hidden])")
    await tab.page.select_option("#period-select", week_of(last_week))
    await tab.wait_for_board([("1", "old_timer", "50")])
    assert (await tab.page.text_content("#period-info") or "").startswith("Past period")
    await shots(tab.page, "past-period")
    await tab.page.select_option("#period-select", "")
    await tab.wait_for_board([])


async def test_a_player_pushed_out_of_the_top_10_sees_their_new_rank(
    server, server_env, open_tab, shots, db: asyncpg.Connection
) -> None:
    for i in range(9):
        user = await ensure_user(db, f"early_{i:02d}")
        await commit_completion(db, user.user_id, "level_1")
    await reconciled(server_env)
    tab = await open_tab()
    await tab.sign_up("tenth")
    await tab.page.click("button[data-action-id='quiz_01']")
    await tab.page.wait_for_function(
        "() => document.getElementById('me-rank').textContent === '#10'"
    )
    # Someone else overtakes: the player is now 11th and no longer on the board.
    late = await api_user(server, "late_comer")
    assert (await api_complete(server, late, "level_1")).status_code == 200
    await tab.page.wait_for_function(
        "() => document.getElementById('me-rank').textContent === '#11'", timeout=15_000
    )
    await shots(tab.page, "pushed-out")


async def test_a_signed_out_visitor_is_told_the_board_updates_every_5_s(server, open_tab) -> None:
    tab = await open_tab()
    await tab.wait_for_connection("Updates every 5 s")
    headers = await api_user(server, "somebody")
    assert (await api_complete(server, headers, "boss")).status_code == 200
    await tab.wait_for_board([("1", "somebody", "100")], timeout=15)


async def test_a_board_chosen_in_the_switcher_updates_live(server, open_tab, shots) -> None:
    tab = await open_tab()
    await tab.sign_up("watcher")
    await tab.page.click("#board-tabs [data-board-id='daily']")
    await tab.page.wait_for_function(
        "() => document.getElementById('board-title').textContent.includes('Today')"
    )
    headers = await api_user(server, "scorer")
    assert (await api_complete(server, headers, "level_1")).status_code == 200
    await tab.wait_for_board([("1", "scorer", "50")])
    assert (await tab.page.text_content("#connection") or "").startswith("Live")
    await shots(tab.page, "daily-live")
