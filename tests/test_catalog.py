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
    parse_action,
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


# -- verification ------------------------------------------------------------------------------


def test_the_demo_catalog_shows_each_verification_kind() -> None:
    actions = {a.id: a for a in parse_catalog_file(demo_catalog_path())}
    kinds = {a.verification for a in actions.values()}
    assert kinds == {"claim", "quiz", "receipt", "server"}
    quiz = actions["quiz_rules"]
    assert len(quiz.questions) == len(quiz.answers) >= 1
    # The ids the quick start and older clients use stay simple claims.
    assert actions["quiz_001"].verification == actions["level_1"].verification == "claim"


def test_verification_and_quiz_keys_load_from_json_and_csv(tmp_path: Path) -> None:
    json_path = tmp_path / "a.json"
    json_path.write_text(
        json.dumps(
            [
                {
                    "id": "q",
                    "name": "Q",
                    "points": 5,
                    "verification": "quiz",
                    "questions": ["Two plus two?", "Sky?"],
                    "answers": ["4", "blue"],
                },
                {"id": "r", "name": "R", "points": 5, "verification": "receipt"},
                {"id": "s", "name": "S", "points": 5, "verification": "server"},
                {"id": "c", "name": "C", "points": 5},
            ]
        )
    )
    csv_path = tmp_path / "a.csv"
    csv_path.write_text(
        "id,name,points,tags,verification,questions,answers\n"
        "q,Q,5,quiz,quiz,Two plus two? | Sky?,4|blue\n"
        "r,R,5,,receipt,,\n"
        "s,S,5,,server,,\n"
        "c,C,5,,,,\n"
    )
    for path in (json_path, csv_path):
        loaded = {a.id: a for a in parse_catalog_file(path)}
        assert {i: a.verification for i, a in loaded.items()} == {
            "q": "quiz",
            "r": "receipt",
            "s": "server",
            "c": "claim",
        }
        assert loaded["q"].questions == ("Two plus two?", "Sky?")
        assert loaded["q"].answers == ("4", "blue")
        assert loaded["r"].questions == loaded["r"].answers == ()


@pytest.mark.parametrize(
    ("entry", "field", "problem"),
    [
        ({"verification": "magic"}, "verification", "must be one of claim, quiz, receipt, server"),
        ({"verification": "quiz"}, "questions", "at least one question"),
        ({"verification": "quiz", "questions": ["A?"]}, "answers", "one answer per question"),
        (
            {"verification": "quiz", "questions": ["A?", "B?"], "answers": ["a"]},
            "answers",
            "one answer per question",
        ),
        ({"verification": "quiz", "questions": ["A?"], "answers": [" "]}, "answers", "blank"),
        ({"verification": "quiz", "questions": [""], "answers": ["a"]}, "questions", "blank"),
        ({"verification": "quiz", "questions": "A?", "answers": [1]}, "answers", "strings"),
        ({"verification": "quiz", "questions": {"A?": 1}, "answers": ["a"]}, "questions", "list"),
        (
            {"verification": "quiz", "questions": ["A?"] * 21, "answers": ["a"] * 21},
            "questions",
            "at most 20",
        ),
        ({"verification": "receipt", "questions": ["A?"]}, "questions", "only a quiz"),
        ({"answers": ["secret-answer"]}, "answers", "only a quiz"),
        (
            {"verification": "quiz", "questions": ["A?"], "answers": ["x" * 201]},
            "answers",
            "at most 200 characters",
        ),
    ],
)
def test_bad_verification_entries_name_the_entry_and_field(
    tmp_path: Path, entry: dict[str, object], field: str, problem: str
) -> None:
    path = tmp_path / "a.json"
    path.write_text(
        json.dumps(
            [
                {"id": "ok", "name": "OK", "points": 5},
                {"id": "quiz_x", "name": "Q", "points": 5} | entry,
            ]
        )
    )
    with pytest.raises(CatalogError, match=problem) as error:
        parse_catalog_file(path)
    assert str(error.value).startswith(f"entry 2 (quiz_x): {field}: ")
    assert (error.value.entry, error.value.field) == ("quiz_x", field)
    assert "secret-answer" not in str(error.value) and "xxxxx" not in str(error.value)


def test_parse_action_checks_one_entry_for_other_callers() -> None:
    action = parse_action({"actionId": "q", "name": "Q", "points": "7", "verification": "server"})
    assert action == Action("q", "Q", 7, verification="server")
    with pytest.raises(CatalogError) as error:
        parse_action({"id": "q", "name": "Q", "points": 0})
    assert (error.value.entry, error.value.field) == ("q", "points")
    assert str(error.value) == "action (q): points: must be between 1 and 100"


async def test_verification_and_quiz_keys_are_stored_and_read_back(
    db: asyncpg.Connection,
) -> None:
    quiz = Action("q", "Q", 5, verification="quiz", questions=("A?",), answers=("a",))
    await upsert_actions(db, [quiz, Action("r", "R", 5, verification="receipt")])
    assert {a.id: a for a in await list_actions(db)} == {
        "q": quiz,
        "r": Action("r", "R", 5, verification="receipt"),
    }
    await upsert_actions(db, [Action("q", "Q", 5)])  # a quiz back to a claim drops its key
    assert (await db.fetchrow("SELECT verification, quiz_answers FROM actions WHERE id = 'q'")) == (
        "claim",
        [],
    )
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE actions SET verification = 'quiz' WHERE id = 'r'")


def test_a_quiz_key_can_be_given_as_answer_key_or_as_question_answer_pairs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "a",
                    "name": "A",
                    "points": 5,
                    "verification": "quiz",
                    "questions": ["Q1?"],
                    "answerKey": ["x"],
                },
                {
                    "id": "b",
                    "name": "B",
                    "points": 5,
                    "verification": "quiz",
                    "quiz": [
                        {"question": "Q1?", "answer": "x"},
                        {"question": "Q2?", "answer": "y"},
                    ],
                },
            ]
        )
    )
    a, b = parse_catalog_file(path)
    assert (a.questions, a.answers) == (("Q1?",), ("x",))
    assert (b.questions, b.answers) == (("Q1?", "Q2?"), ("x", "y"))
    for bad, field in (
        ({"quiz": [{"question": "Q?"}]}, "quiz"),
        ({"quiz": [{"question": "Q?", "answer": "a"}], "questions": ["Q?"]}, "quiz"),
        ({"questions": ["Q?"], "answers": ["a"], "answerKey": ["b"]}, "answers"),
    ):
        with pytest.raises(CatalogError) as error:
            parse_action({"id": "q", "name": "Q", "points": 5, "verification": "quiz"} | bad)
        assert error.value.field == field
