"""`leaderboard admin grant|revoke|list`, run as an operator would."""

from __future__ import annotations

from app.db.accounts import ensure_user
from tests.support.cli import run_cli


async def test_grant_revoke_and_list(db, database_url) -> None:  # type: ignore[no-untyped-def]
    await ensure_user(db, "Carol")
    env = {"DATABASE_URL": database_url}
    granted = run_cli("admin", "grant", "carol", env=env)
    assert granted.returncode == 0 and "Carol is now an admin" in granted.stdout
    assert await db.fetchval("SELECT role FROM users WHERE username = 'Carol'") == "admin"
    again = run_cli("admin", "grant", "Carol", env=env)
    assert again.returncode == 0 and "already" in again.stdout
    assert "Carol" in run_cli("admin", "list", env=env).stdout
    revoked = run_cli("admin", "revoke", "Carol", env=env)
    assert revoked.returncode == 0 and "no longer an admin" in revoked.stdout
    assert await db.fetchval("SELECT role FROM users WHERE username = 'Carol'") == "player"
    missing = run_cli("admin", "grant", "nobody", env=env)
    assert missing.returncode == 1 and "no account" in missing.stderr
    actions = [r["action"] for r in await db.fetch("SELECT action FROM admin_audit ORDER BY id")]
    assert actions == ["role.grant", "role.revoke"]
    assert await db.fetchval("SELECT count(*) FROM admin_audit WHERE admin_name = 'operator'") == 2
