"""The action catalog: which actions exist, the points each is worth (server authoritative) and
how a completion of each is verified.

It lives in the ``actions`` table (app/db/actions.py); each node keeps a copy in memory,
refreshed periodically, so an unknown action is refused without a database round trip.

Every way an action enters the catalog (a JSON or CSV file, an admin endpoint) goes through
``parse_action``: the rules live here once.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.boards import check_tags
from app.core.errors import InvalidInput

ACTION_ID = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
REPEATS = ("once", "daily")
# How a completion is proved (docs/api.md "Verification"): the player's word, a quiz answered
# right, a receipt signed by a game server, or only a game server can award it.
VERIFICATIONS = ("claim", "quiz", "receipt", "server")
MAX_QUESTIONS = 20
MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 200
# Questions and answers in one CSV cell are separated by '|' (so neither may contain one).
CSV_LIST_SEPARATOR = "|"
# Tags in a CSV cell (or a JSON string): separated by ';', ',' or spaces.
_TAG_SEPARATORS = re.compile(r"[;,\s]+")


class CatalogError(Exception):
    """A catalog entry is invalid; the message says which entry, which field and why
    (``entry`` and ``field`` say it to code, e.g. an admin endpoint's error body)."""

    def __init__(self, message: str, *, entry: str | None = None, field: str | None = None):
        super().__init__(message)
        self.entry = entry
        self.field = field


@dataclass(frozen=True)
class Action:
    id: str
    name: str
    points: int
    repeat: str = "once"
    description: str = ""
    active: bool = True
    # Boards with an action tag count only actions carrying it (app/core/boards.py).
    tags: tuple[str, ...] = ()
    verification: str = "claim"
    # A quiz's questions (public) and their answer key (secret: never listed by the API, never
    # in a repr, so never in a log line either). Same length; empty unless verification="quiz".
    questions: tuple[str, ...] = ()
    answers: tuple[str, ...] = field(default=(), repr=False)


class Catalog:
    """The in-memory copy of the active actions."""

    def __init__(self, actions: list[Action] | None = None) -> None:
        self._actions = {a.id: a for a in actions or [] if a.active}

    def get(self, action_id: str) -> Action | None:
        return self._actions.get(action_id)

    def all(self) -> list[Action]:
        return sorted(self._actions.values(), key=lambda a: a.id)

    def replace(self, actions: list[Action]) -> None:
        """Take a fresh read of the catalog (inactive actions are dropped)."""
        self._actions = {a.id: a for a in actions if a.active}


def parse_catalog_file(path: Path) -> list[Action]:
    """Read actions from a JSON array or a CSV file with a header row."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        entries: list[Any] = list(csv.DictReader(io.StringIO(text)))
    else:
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as error:
            raise CatalogError(f"{path.name}: not valid JSON ({error})") from None
        if not isinstance(entries, list):
            raise CatalogError(f"{path.name}: expected a JSON array of actions")
    actions = [parse_action(entry, number) for number, entry in enumerate(entries, start=1)]
    ids = [a.id for a in actions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CatalogError(f"{path.name}: duplicate action ids: {', '.join(duplicates)}")
    return actions


def parse_action(entry: Any, number: int | None = None) -> Action:
    """One catalog entry (a JSON object, a CSV row or an admin request body) as an Action.

    Raises CatalogError naming the entry (its number in a file, else its id) and the field."""
    where = f"entry {number}" if number is not None else "action"
    if not isinstance(entry, Mapping):
        raise CatalogError(f"{where}: expected an object", entry=where)
    action_id = str(entry.get("id") or entry.get("actionId") or "").strip()
    if not ACTION_ID.match(action_id):
        raise CatalogError(
            f"{where}: id {action_id!r} must match {ACTION_ID.pattern}", entry=where, field="id"
        )
    where = f"{where} ({action_id})"

    def fail(field_name: str, problem: str) -> CatalogError:
        return CatalogError(f"{where}: {field_name}: {problem}", entry=action_id, field=field_name)

    name = str(entry.get("name") or "").strip()
    if not 1 <= len(name) <= 100:
        raise fail("name", "must be 1-100 characters")
    try:
        points = int(entry.get("points", ""))
    except (TypeError, ValueError):
        raise fail("points", "must be a whole number") from None
    if not 1 <= points <= 100:
        raise fail("points", "must be between 1 and 100")
    repeat = str(entry.get("repeat") or "once").strip()
    if repeat not in REPEATS:
        raise fail("repeat", f"must be one of {', '.join(REPEATS)}")
    active = entry.get("active", True)
    if isinstance(active, str):
        active = active.strip().lower() not in {"0", "false", "no", "off"}
    verification = str(entry.get("verification") or "claim").strip()
    if verification not in VERIFICATIONS:
        raise fail("verification", f"must be one of {', '.join(VERIFICATIONS)}")
    raw_questions, raw_answers = _quiz_fields(entry, fail)
    questions = _parse_texts(raw_questions, MAX_QUESTION_CHARS, "questions", fail)
    answers = _parse_texts(raw_answers, MAX_ANSWER_CHARS, "answers", fail)
    if verification == "quiz":
        if not questions:
            raise fail("questions", "a quiz needs at least one question")
        if len(answers) != len(questions):
            raise fail("answers", f"a quiz needs one answer per question ({len(questions)})")
        if any(not a.strip() for a in answers):
            raise fail("answers", "an answer cannot be blank")
    elif questions or answers:
        raise fail(
            "questions" if questions else "answers", "only a quiz action has questions and answers"
        )
    try:
        tags = _parse_tags(entry.get("tags"))
    except CatalogError as error:
        raise fail("tags", str(error)) from None
    return Action(
        id=action_id,
        name=name,
        points=points,
        repeat=repeat,
        description=str(entry.get("description") or ""),
        active=bool(active),
        tags=tags,
        verification=verification,
        questions=questions,
        answers=answers,
    )


def _quiz_fields(entry: Mapping[str, Any], fail: Any) -> tuple[Any, Any]:
    """Questions and answer key as given: ``questions`` + ``answers`` (or ``answerKey``), or
    one ``quiz`` list of ``{"question", "answer"}`` objects."""
    answers = entry.get("answers")
    for alias in ("answerKey", "answer_key"):
        if entry.get(alias) not in (None, ""):
            if answers not in (None, ""):
                raise fail("answers", f"give answers or {alias}, not both")
            answers = entry[alias]
    quiz = entry.get("quiz")
    if quiz in (None, ""):
        return entry.get("questions"), answers
    if entry.get("questions") not in (None, "") or answers not in (None, ""):
        raise fail("quiz", "give quiz or questions and answers, not both")
    if not isinstance(quiz, list) or not all(
        isinstance(item, Mapping) and set(item) == {"question", "answer"} for item in quiz
    ):
        raise fail("quiz", 'must be a list of {"question": ..., "answer": ...} objects')
    return [item["question"] for item in quiz], [item["answer"] for item in quiz]


def _parse_texts(value: Any, max_chars: int, field_name: str, fail: Any) -> tuple[str, ...]:
    """A JSON array of strings, or one CSV cell of items separated by '|'."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items: list[Any] = [item.strip() for item in value.split(CSV_LIST_SEPARATOR)]
    elif isinstance(value, list):
        items = value
    else:
        raise fail(field_name, "must be a list of strings")
    if not all(isinstance(item, str) for item in items):
        raise fail(field_name, "must be a list of strings")
    if len(items) > MAX_QUESTIONS:
        raise fail(field_name, f"at most {MAX_QUESTIONS}")
    if any(len(item) > max_chars for item in items):
        # The text itself is not quoted: an answer key stays out of error messages.
        raise fail(field_name, f"each at most {max_chars} characters")
    if field_name == "questions" and any(not item.strip() for item in items):
        raise fail(field_name, "a question cannot be blank")
    return tuple(items)


def _parse_tags(value: Any) -> tuple[str, ...]:
    """Tags as a JSON array of strings, or one string of tags separated by ';', ',' or spaces."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items: list[Any] = [t for t in _TAG_SEPARATORS.split(value.strip()) if t]
    elif isinstance(value, list):
        items = value
    else:
        raise CatalogError("must be a list of strings")
    if not all(isinstance(t, str) for t in items):
        raise CatalogError("must be a list of strings")
    try:
        return check_tags([t.strip() for t in items])
    except InvalidInput as error:
        raise CatalogError(error.message) from None


def demo_catalog_path() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "demo_actions.json"
