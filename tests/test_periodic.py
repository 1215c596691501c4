"""The background-task helper: a failure is logged and the loop goes on; stop ends it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.core.periodic import Periodic


async def test_a_failing_tick_is_logged_and_the_task_keeps_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    third_call = asyncio.Event()

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        if calls == 3:
            third_call.set()

    periodic = Periodic()
    with caplog.at_level(logging.ERROR, logger="app.core.periodic"):
        periodic.every(0.01, flaky, name="flaky")
        await asyncio.wait_for(third_call.wait(), 5)
    assert periodic.running
    assert any("'flaky' failed" in r.getMessage() for r in caplog.records)
    await periodic.stop()
    assert not periodic.running


async def test_stop_cancels_a_task_in_the_middle_of_its_action() -> None:
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(3600)

    periodic = Periodic()
    periodic.every(0.01, slow, name="slow")
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(periodic.stop(), 5)
    assert not periodic.running
