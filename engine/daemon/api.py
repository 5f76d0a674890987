"""HTTP: Segment-compatible ingest (`ingest_http`), the hosted pipelines' webhook
(`segment_webhook`), CORS on both (`cors`), `/health` and `/metrics`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from leadrules.engine.daemon.cors import Cors
from leadrules.engine.daemon.ingest_http import Ingest, IngestHost, add_tracking_routes
from leadrules.engine.daemon.segment_webhook import add_webhook_route
from leadrules.engine.daemon.ui import add_ui

__all__ = ["IngestHost", "create_app"]


def create_app(daemon: IngestHost) -> FastAPI:
    app = FastAPI(title="leadrules", version="1", docs_url="/docs", redoc_url=None)
    ingest = Ingest(daemon)
    paths = [*add_tracking_routes(app, ingest), add_webhook_route(app, ingest)]
    app.add_middleware(Cors, origins=daemon.settings.ingest.cors_origins, paths=paths)

    @app.get("/health")
    def health() -> Response:
        status = daemon.health()
        return JSONResponse(status, status_code=200 if status["status"] == "ok" else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        daemon.refresh_gauges()
        return Response(generate_latest(daemon.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    add_ui(app, daemon)  # the read-only dashboard, behind the admin token
    return app
