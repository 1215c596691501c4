"""A plain `pip install .` (a wheel, not the source tree) carries the SQL and Lua it needs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_migrations_scripts_and_assets(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pattern in (("sql", "*.sql"), ("lua", "*.lua")):
        for source in (ROOT / folder).glob(pattern):
            assert f"app/{folder}/{source.name}" in names
    assert "app/data/demo_actions.json" in names
    assert {
        "app/http/static/index.html",
        "app/http/static/app.js",
        "app/http/static/style.css",
    } <= names
    assert any(name.endswith("entry_points.txt") for name in names)
