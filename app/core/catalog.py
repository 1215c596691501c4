"""The action catalog: which actions exist and the points each is worth (server authoritative).

It lives in the ``actions`` table (app/db/actions.py); each node keeps a copy in memory,
refreshed periodically, so an unknown action is refused without a database round trip.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.boards import check_tags
from app.core.errors import InvalidInput

ACTION_ID = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
REPEATS = ("once", "daily")
# Tags in a CSV cell (or a JSON string): separated by ';', ',' or spaces.
_TAG_SEPARATORS = re.compile(r"[;,\s]+")


class CatalogError(Exception):
    """A catalog file cannot be loaded; the message says which entry and why."""


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
    actions = [_parse_entry(entry, number) for number, entry in enumerate(entries, start=1)]
    ids = [a.id for a in actions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CatalogError(f"{path.name}: duplicate action ids: {', '.join(duplicates)}")
    return actions


def _parse_entry(entry: Any, number: int) -> Action:
    where = f"entry {number}"
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected an object")
    action_id = str(entry.get("id") or entry.get("actionId") or "").strip()
    if not ACTION_ID.match(action_id):
        raise CatalogError(f"{where}: id {action_id!r} must match {ACTION_ID.pattern}")
    name = str(entry.get("name") or "").strip()
    if not 1 <= len(name) <= 100:
        raise CatalogError(f"{where} ({action_id}): name must be 1-100 characters")
    try:
        points = int(entry.get("points", ""))
    except (TypeError, ValueError):
        raise CatalogError(f"{where} ({action_id}): points must be a whole number") from None
    if not 1 <= points <= 100:
        raise CatalogError(f"{where} ({action_id}): points must be between 1 and 100")
    repeat = str(entry.get("repeat") or "once").strip()
    if repeat not in REPEATS:
        raise CatalogError(f"{where} ({action_id}): repeat must be one of {', '.join(REPEATS)}")
    active = entry.get("active", True)
    if isinstance(active, str):
        active = active.strip().lower() not in {"0", "false", "no", "off"}
    return Action(
        id=action_id,
        name=name,
        points=points,
        repeat=repeat,
        description=str(entry.get("description") or ""),
        active=bool(active),
        tags=_parse_tags(entry.get("tags"), f"{where} ({action_id})"),
    )


def _parse_tags(value: Any, where: str) -> tuple[str, ...]:
    """Tags as a JSON array of strings, or one string of tags separated by ';', ',' or spaces."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items: list[Any] = [t for t in _TAG_SEPARATORS.split(value.strip()) if t]
    elif isinstance(value, list):
        items = value
    else:
        raise CatalogError(f"{where}: tags must be a list of strings")
    if not all(isinstance(t, str) for t in items):
        raise CatalogError(f"{where}: tags must be a list of strings")
    try:
        return check_tags([t.strip() for t in items])
    except InvalidInput as error:
        raise CatalogError(f"{where}: {error.message}") from None


def demo_catalog_path() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "demo_actions.json"
