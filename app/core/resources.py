"""Locate the SQL migrations and Lua scripts, in a source checkout and in an installed wheel.

In the repository they live at the top level (``sql/``, ``lua/``); a wheel carries them inside
the package (see ``force-include`` in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

# app/core/resources.py -> app/
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def resource_dir(name: str) -> Path:
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the {name}/ folder is missing from this installation")
