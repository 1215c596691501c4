"""The action catalog: files in, validation, and the in-memory copy."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from app.core.catalog import (
    Action,
    Catalog,
    CatalogError,
    demo_catalog_path,
    parse_catalog_file,
)
from app.db.actions import list_actions, refresh_catalog, upsert_actions


def test_the_demo_catalog_has_the_three_kinds_the_spec_names() -> None:
    actions = {a.id: a for a in parse_catalog_file(demo_catalog_path())}
    assert actions["daily_login"].points == 5 and actions["daily_login"].repeat == "daily"
    assert actions["quiz_001"].points == 10
    assert actions["level_1"].points == 50
    assert all(1 <= a.points <= 100 for a in actions.values())


def test_csv_files_load(tmp_path: Path) -> None:
    path = tmp_path / "actions.csv"
    path.write_text(
        "id,name,points,repeat,active\nquiz_9,Quiz nine,10,once,yes\nold,Old,5,once,no\n"
    )
    actions = parse_catalog_file(path)
    assert actions == [
        Action("quiz_9", "Quiz nine", 10, "once", "", True),
        Action("old", "Old", 5, "once", "", False),
    ]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"id": "q", "name": "Q", "points": 0}, "between 1 and 100"),
        ({"id": "q", "name": "Q", "points": 101}, "between 1 and 100"),
        ({"id": "q", "name": "Q", "points": "ten"}, "whole number"),
        ({"id": "Bad Id", "name": "Q", "points": 5}, "must match"),
        ({"id": "q", "name": "", "points": 5}, "name"),
        ({"id": "q", "name": "Q", "points": 5, "repeat": "hourly"}, "repeat"),
        ({"id": "q", "name": "Q", "points": 5, "tags": ["Not a tag"]}, "tag must match"),
        ({"id": "q", "name": "Q", "points": 5, "tags": [1, 2]}, "list of strings"),
        ({"id": "q", "name": "Q", "points": 5, "tags": {"quiz": True}}, "list of strings"),
    ],
)
def test_bad_entries_are_reported_with_their_place(
    tmp_path: Path, entry: dict[str, object], problem: str
) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(CatalogError, match=problem):
        parse_catalog_file(path)


def test_tags_load_from_json_arrays_and_csv_cells(tmp_path: Path) -> None:
    json_path = tmp_path / "a.json"
    json_path.write_text(json.dumps([{"id": "q", "name": "Q", "points": 5, "tags": ["quiz"]}]))
    assert parse_catalog_file(json_path)[0].tags == ("quiz",)
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("id,name,points,tags\nq,Q,5,quiz;weekend\nr,R,5,\n")
    assert [a.tags for a in parse_catalog_file(csv_path)] == [("quiz", "weekend"), ()]
    demo = {a.id: a.tags for a in parse_catalog_file(demo_catalog_path())}
    assert demo["quiz_001"] == ("quiz",) and demo["level_1"] == ("level",)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"id": "q", "name": "Q", "points": 5}] * 2))
    with pytest.raises(CatalogError, match="duplicate"):
        parse_catalog_file(path)


async def test_upsert_updates_points_and_the_copy_hides_inactive_actions(
    db: asyncpg.Connection,
) -> None:
    await upsert_actions(
        db, [Action("quiz_1", "Quiz", 10), Action("gone", "Gone", 10, active=False)]
    )
    await upsert_actions(db, [Action("quiz_1", "Quiz", 20)])
    assert [(a.id, a.points) for a in await list_actions(db)] == [("gone", 10), ("quiz_1", 20)]
    catalog = Catalog()
    await refresh_catalog(catalog, db)
    assert catalog.get("quiz_1") == Action("quiz_1", "Quiz", 20)
    assert catalog.get("gone") is None
    assert [a.id for a in catalog.all()] == ["quiz_1"]


async def test_tags_are_stored_and_replaced_with_the_action(db: asyncpg.Connection) -> None:
    await upsert_actions(db, [Action("quiz_1", "Quiz", 10, tags=("quiz", "weekend"))])
    assert (await list_actions(db))[0].tags == ("quiz", "weekend")
    await upsert_actions(db, [Action("quiz_1", "Quiz", 10, tags=("quiz",))])
    assert (await list_actions(db))[0].tags == ("quiz",)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE actions SET tags = '{\"Bad Tag\"}'")
