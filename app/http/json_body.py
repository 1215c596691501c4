"""JSON on the wire, decoded and encoded in one place for every route.

Requests: the body is parsed from its bytes with orjson, which insists on UTF-8, refuses
``NaN``/``Infinity`` and stops at a fixed depth instead of recursing (the standard library
raised ``UnicodeDecodeError`` or ``RecursionError`` here, both 500s). Anything it refuses, and
anything nested deeper than ``MAX_DEPTH``, is a 400 ``VALIDATION_ERROR``; a body that is not
declared as JSON is a 415. Responses: orjson again, compact and in field order (Flask's
provider sorts keys and adds a newline), so a body dumped from a model is byte-for-byte what
clients have always received.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic_core import to_jsonable_python
from quart import Quart, Request, Response
from quart.json.provider import JSONProvider

from app.http.errors import ApiError, validation_error

# Deep enough for any body the API accepts (the deepest, `data`, is free-form but small);
# shallow enough that nothing downstream (pydantic, orjson.dumps at 254) recurses far.
MAX_DEPTH = 32

_ENCODE_OPTIONS = orjson.OPT_NON_STR_KEYS  # the OpenAPI document keys responses by int status


def encode(value: Any) -> bytes:
    return orjson.dumps(value, default=to_jsonable_python, option=_ENCODE_OPTIONS)


def decode_body(body: bytes) -> Any:
    """The JSON value of a request body; ApiError (400) when it is not strict JSON."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # orjson's message names the problem and its position, never the input itself.
        raise validation_error(f"The body is not valid JSON: {error}") from None
    if _deeper_than(value, MAX_DEPTH):
        raise validation_error(f"The body is nested more than {MAX_DEPTH} levels deep.")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    # Iterative, so a hostile body cannot make the check itself recurse.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class JsonRequest(Request):
    """Quart's request, with ``get_json`` (what quart-schema's ``validate_request`` reads)
    decoding bytes strictly instead of text leniently."""

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if cache and self._cached_json[silent] is not Ellipsis:
            return self._cached_json[silent]
        if not (force or self.is_json):
            if silent:
                return None
            raise ApiError(
                415,
                "VALIDATION_ERROR",
                "The body must be JSON (Content-Type: application/json).",
            )
        # A body over MAX_CONTENT_LENGTH raises RequestEntityTooLarge here (a 413).
        body = await self.get_data(cache=cache, as_text=False, parse_form_data=False)
        try:
            result = decode_body(body)
        except ApiError:
            if not silent:
                raise
            result = None
        if cache:
            self._cached_json[silent] = result
        return result


class OrjsonProvider(JSONProvider):
    """``app.json``: what Quart uses to turn a returned dict (or a model quart-schema has
    dumped) into a response."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return encode(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        body = encode(self._prepare_response_obj(args, kwargs))
        return Response(body, content_type="application/json")


def install(app: Quart) -> None:
    """Use strict JSON for requests and orjson for responses; call after QuartSchema(app),
    which installs a provider of its own."""
    app.request_class = JsonRequest
    app.json = OrjsonProvider(app)
