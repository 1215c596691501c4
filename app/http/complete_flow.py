"""``POST /api/action/complete``'s work, shared by the Quart route (api_scores.py) and the
edge's lean path (app/edge/complete_http.py), so both authenticate the same way and call the
same core function with the same arguments.

This is the one seam to re-point when authentication or ``complete_action`` change: neither
caller may grow a copy of either.
"""

from __future__ import annotations

import orjson
from pydantic import JsonValue

from app.core.scoring import Completion, complete_action
from app.core.sessions import bearer_token
from app.core.tokens import Identity
from app.http.errors import validation_error
from app.http.services import Services


async def identify(svc: Services, authorization: str | None) -> Identity:
    """The caller of a request with this ``Authorization`` header, through the account guard
    (app/core/sessions.py): what ``requires_identity`` does for a Quart route."""
    return await svc.sessions.guard.authenticate(authorization)


def identify_now(svc: Services, authorization: str | None) -> Identity:
    """``identify`` without awaiting (the guard does no I/O): the edge asks it before waiting
    for a body the route would never read."""
    return svc.sessions.guard.verify(bearer_token(authorization)).identity


async def complete(
    svc: Services, identity: Identity, action_id: str, data: JsonValue
) -> Completion:
    """Complete ``action_id`` for ``identity`` (the body already validated by the model)."""
    if data is not None and len(orjson.dumps(data)) > svc.settings.max_action_data_bytes:
        raise validation_error(
            f"`data` is larger than {svc.settings.max_action_data_bytes} bytes.", field="data"
        )
    return await complete_action(
        identity=identity,
        action_id=action_id,
        data=data,
        store=svc.completions,
        catalog=svc.catalog,
        gate=svc.limiter,
        ranking=svc.score_applies,
        issuers=svc.issuers,
        limit_per_minute=svc.settings.rate_limit_per_minute,
    )
