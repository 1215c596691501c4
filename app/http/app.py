"""The application factory."""

from __future__ import annotations

from quart import Quart
from quart_schema import QuartSchema

from app.core.settings import Settings
from app.http import api_auth, api_board, api_boards, api_scores, api_server, json_body, web
from app.http import ops as ops_api
from app.http.errors import register_error_handlers
from app.http.openapi import ApiDocument
from app.http.services import Services
from app.obs.logging_setup import configure_logging


def create_app(settings: Settings) -> Quart:
    # No built-in /static/<path>: it would serve whatever a "static" folder beside the working
    # directory holds. The page's assets come from web.py, by name, with their own headers.
    app = Quart("leaderboard", static_folder=None)
    # Quart refuses a larger body before reading it; the error handler turns that into a 413.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    QuartSchema(
        app,
        info={"title": "Live leaderboard API", "version": "0.1.0"},
        security_schemes={
            "bearer": {"type": "http", "scheme": "bearer", "bearer_format": "JWT"},
            # Game servers: `Authorization: ApiKey <key>` (POST /api/server/awards).
            "apiKey": {"type": "apiKey", "in_": "header", "name": "Authorization"},
        },
        redoc_ui_path=None,
        scalar_ui_path=None,
        openapi_provider_class=ApiDocument,
    )
    json_body.install(app)  # after QuartSchema, which sets a JSON provider of its own
    register_error_handlers(app)
    ops_api.install(app)  # /healthz, /metrics, /readyz, request ids and timing
    for module in (api_auth, api_board, api_boards, api_scores, api_server):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(web.create_blueprint())

    @app.before_serving
    async def start_services() -> None:
        app.extensions["leaderboard"] = await Services.start(settings)

    @app.after_serving
    async def stop_services() -> None:
        services: Services | None = app.extensions.pop("leaderboard", None)
        if services is not None:
            await services.close()

    return app


def app_for_serving(settings: Settings) -> Quart:
    """The app as a serving process runs it: settings checked, logging configured."""
    settings.check_for_serving()
    configure_logging(json=not settings.dev_mode)
    return create_app(settings)


def app_from_env() -> Quart:
    """Entry point for other ASGI servers (``hypercorn 'app.http.app:app_from_env()'``)."""
    return app_for_serving(Settings.from_env())
