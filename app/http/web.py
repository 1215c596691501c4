"""The browser page at ``/``, the admin console at ``/admin``, and their assets, with a strict
Content-Security-Policy.

Assets are addressed by a hash of their content, so they can be cached for a year and a new
release is fetched at once; the page itself is revalidated on every load.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from quart import Blueprint, Response
from quart_schema import tag

from app.http.errors import ApiError, error_response
from app.http.openapi import errors, parameter, raw_response

STATIC_DIR = Path(__file__).resolve().parent / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

# Only this origin's scripts, styles and connections (fetch and WebSocket); no inline script,
# no framing, no plugins.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    digest: str


def _load_assets() -> dict[str, Asset]:
    assets = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.suffix in _TYPES:
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            assets[path.name] = Asset(body, _TYPES[path.suffix], digest)
    return assets


def _render_page(assets: dict[str, Asset], name: str = "index.html") -> bytes:
    html = (STATIC_DIR / name).read_text(encoding="utf-8")
    for name, asset in assets.items():
        html = html.replace(f'"/static/{name}"', f'"/static/{name}?v={asset.digest}"')
    return html.encode()


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    return response


def create_blueprint() -> Blueprint:
    blueprint = Blueprint("web", __name__)
    assets = _load_assets()
    page = _render_page(assets)

    @blueprint.get("/")
    @tag(["page"])
    @raw_response(200, "The page.", {"text/html": {"type": "string"}})
    async def index() -> Response:
        """The browser page: live top 10, sign-in, actions."""
        response = Response(page, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "no-cache"
        return _secure(response)

    admin_page = _render_page(assets, "admin.html")

    @blueprint.get("/admin")
    @tag(["page"])
    @raw_response(200, "The admin console.", {"text/html": {"type": "string"}})
    async def admin() -> Response:
        """The admin console (an admin signs in; every call is checked by the API)."""
        response = Response(admin_page, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "no-cache"
        return _secure(response)

    @blueprint.get("/static/<name>")
    @tag(["page"])
    @raw_response(
        200,
        "The asset; its URL carries a hash of its content, so it is cached for a year.",
        {kind.split(";")[0]: {"type": "string"} for kind in _TYPES.values()},
    )
    @errors((404, "`NOT_FOUND`: no such asset."))
    @parameter("name", "path", "An asset the page links to.", {"enum": sorted(assets)})
    async def static_asset(name: str) -> Response:
        """A script or style sheet of the page."""
        asset = assets.get(name)
        if asset is None:
            return _secure(error_response(ApiError(404, "NOT_FOUND", "No such asset.")))
        response = Response(asset.body, content_type=asset.content_type)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.headers["ETag"] = f'"{asset.digest}"'
        return _secure(response)

    return blueprint
