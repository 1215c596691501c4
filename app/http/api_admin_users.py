"""/api/admin/users/...: find a player, see their history, correct scores, ban."""

from __future__ import annotations

from quart import Blueprint

blueprint = Blueprint("admin_users", __name__, url_prefix="/api/admin")
