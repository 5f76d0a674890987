"""HTTP: Segment-compatible ingest (`ingest_http`), the hosted pipelines' webhook
(`segment_webhook`), CORS on both (`cors`), `/health` and `/metrics` (behind
`ingest.metrics_token` when set, `admin`). A database that cannot be reached is a `503`
with `Retry-After` on every route, not a 500 and a traceback (`db_outage`)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from leadrules.engine.daemon.admin import token_ok
from leadrules.engine.daemon.cors import Cors
from leadrules.engine.daemon.db_outage import RETRY_AFTER_S, is_db_unavailable
from leadrules.engine.daemon.ingest_http import Ingest, IngestHost, add_tracking_routes
from leadrules.engine.daemon.segment_webhook import add_webhook_route
from leadrules.engine.daemon.ui import add_ui

__all__ = ["IngestHost", "create_app"]

RETRY = {"Retry-After": str(RETRY_AFTER_S)}


def create_app(daemon: IngestHost) -> FastAPI:
    app = FastAPI(title="leadrules", version="1", docs_url="/docs", redoc_url=None)
    ingest = Ingest(daemon)
    paths = [*add_tracking_routes(app, ingest), add_webhook_route(app, ingest)]
    app.add_middleware(Cors, origins=daemon.settings.ingest.cors_origins, paths=paths)

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError) -> Response:
        if not is_db_unavailable(exc):
            raise exc  # a real bug: the server error page and its traceback
        outage = getattr(daemon, "outage", None)
        if outage is not None:
            outage.failed(exc, "request")
        body = {"success": False, "message": "database unavailable, retry later"}
        return JSONResponse(body, status_code=503, headers=RETRY)

    @app.get("/health")
    def health() -> Response:
        status = daemon.health()
        if status["status"] == "ok":
            return JSONResponse(status)
        return JSONResponse(status, status_code=503, headers=RETRY)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        settings = daemon.settings.ingest
        if settings.metrics_token is not None:
            expected = settings.resolved_metrics_token()
            # configured but its variable unset: closed, not open
            if expected is None or not token_ok(request, expected):
                return Response("metrics token required", status_code=401)
        daemon.refresh_gauges()
        return Response(generate_latest(daemon.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    add_ui(app, daemon)  # the read-only dashboard, behind the admin token
    return app
