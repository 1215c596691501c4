"""GET /api/admin/audit: the admin audit log, newest first (read-only: no route edits it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, request
from quart_schema import security_scheme, tag, validate_response

from app.core.audit import AuditEntry, decode_cursor
from app.core.errors import InvalidInput
from app.core.ranking import iso
from app.core.tokens import Identity
from app.db import audit as db_audit
from app.http.admin_auth import ADMIN_ERRORS, requires_admin
from app.http.openapi import errors, parameter
from app.http.request import services

blueprint = Blueprint("admin_audit", __name__, url_prefix="/api/admin")

AUDIT_DEFAULT, AUDIT_MAX = 50, 100


class AuditEntryModel(BaseModel):
    id: int
    at: str
    adminId: str | None = Field(description="`null`: an operator at the command line.")
    adminName: str
    action: str = Field(examples=["score.adjust"])
    target: str | None = Field(examples=["user:6f1c…"])
    details: dict[str, Any]
    reason: str | None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryModel:
        return cls(
            id=entry.id,
            at=iso(entry.at),
            adminId=entry.admin_id,
            adminName=entry.admin_name,
            action=entry.action,
            target=entry.target,
            details=entry.details,
            reason=entry.reason,
        )


class AuditResponse(BaseModel):
    """A page of the audit log, newest first."""

    entries: list[AuditEntryModel]
    nextCursor: str | None = Field(description="Pass as `cursor` for older entries; `null`: none.")


def query_limit(value: str | None, default: int, maximum: int) -> int:
    """``limit`` from the query string: a whole number 1..maximum (default when absent)."""
    if value is None:
        return default
    if not value.isdigit() or len(value) > 4 or not 1 <= int(value) <= maximum:
        raise InvalidInput(f"`limit` is a whole number from 1 to {maximum}.", field="limit")
    return int(value)


@blueprint.get("/audit")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_response(AuditResponse)
@parameter(
    "limit",
    "query",
    "Entries per page.",
    {"type": "integer", "minimum": 1, "maximum": AUDIT_MAX, "default": AUDIT_DEFAULT},
)
@parameter("cursor", "query", "`nextCursor` of the previous page.", {"type": "string"})
@errors((400, "`VALIDATION_ERROR`: a malformed `limit` or `cursor`."), *ADMIN_ERRORS, 500)
async def audit_log(admin: Identity) -> AuditResponse:
    """Every admin action, newest first (keyset pages)."""
    limit = query_limit(request.args.get("limit"), AUDIT_DEFAULT, AUDIT_MAX)
    before = decode_cursor(request.args.get("cursor"))
    found = await db_audit.page(services().pool, limit, before)
    return AuditResponse(
        entries=[AuditEntryModel.of(e) for e in found.entries], nextCursor=found.next_cursor
    )
