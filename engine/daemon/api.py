"""HTTP: Segment-compatible ingest, /health and /metrics.

`POST /v1/batch` takes `{"batch": [...]}`; `POST /v1/track|page|identify|group|alias` take one
message. The write key is the HTTP Basic user name (empty password); `Content-Encoding: gzip`
is accepted. `200 {"success": true}` means every message is stored durably; a request with
invalid messages gets `400` with one error per message (index and field), and its valid
messages are kept. Segment's limits apply: 32 KB per message, 500 KB per batch.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from leadrules.engine.daemon.metrics import Metrics
from leadrules.engine.language.settings import Settings


class IngestHost(Protocol):
    """What the HTTP layer needs from the daemon (`runtime.Daemon` implements it)."""

    settings: Settings
    metrics: Metrics

    def write_keys(self) -> list[str]: ...

    async def ingest(self, messages: list[Any], indices: list[int]) -> list[dict[str, Any]]: ...

    def health(self) -> dict[str, Any]: ...

    def refresh_gauges(self) -> None: ...


SINGLE = ("track", "page", "identify", "group", "alias")


def _write_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, _, _ = base64.b64decode(value).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"success": False, "message": message, **extra}, status_code=status)


def create_app(daemon: IngestHost) -> FastAPI:
    app = FastAPI(title="leadrules", version="1", docs_url="/docs", redoc_url=None)
    limits = daemon.settings.ingest

    async def read(request: Request) -> Any:
        body = await request.body()
        if request.headers.get("content-encoding", "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                raise ValueError("body is not valid gzip") from None
        if len(body) > limits.max_batch_bytes:
            raise OverflowError(f"request is larger than {limits.max_batch_bytes} bytes")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"body is not valid JSON: {exc}") from None

    async def handle(request: Request, unpack: Callable[[Any], list[Any]]) -> Response:
        key = _write_key(request)
        if key is None or key not in daemon.write_keys():
            return _error(401, "missing or wrong write key (HTTP Basic user name)")
        try:
            payload = await read(request)
            messages = unpack(payload)
        except OverflowError as exc:
            return _error(413, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
        oversized: list[dict[str, Any]] = []
        kept: list[Any] = []
        for index, message in enumerate(messages):
            if len(orjson.dumps(message)) > limits.max_message_bytes:
                oversized.append(
                    {
                        "index": index,
                        "field": "message",
                        "message": f"larger than {limits.max_message_bytes} bytes",
                    }
                )
                kept.append(None)
            else:
                kept.append(message)
        result = await daemon.ingest(
            [m for m in kept if m is not None], [i for i, m in enumerate(kept) if m is not None]
        )
        errors = sorted(oversized + result, key=lambda e: e["index"])
        if errors:
            return JSONResponse({"success": False, "errors": errors}, status_code=400)
        return JSONResponse({"success": True})

    def batch(payload: Any) -> list[Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
            raise ValueError('body must be {"batch": [...]}')
        context = payload.get("context")
        messages: list[Any] = payload["batch"]
        if isinstance(context, dict):  # batch-level context applies to every message
            messages = [
                {**m, "context": {**context, **(m.get("context") or {})}}
                if isinstance(m, dict)
                else m
                for m in messages
            ]
        return messages

    @app.post("/v1/batch")
    async def post_batch(request: Request) -> Response:
        return await handle(request, batch)

    def single(kind: str) -> Callable[[Any], list[Any]]:
        def unpack(payload: Any) -> list[Any]:
            if isinstance(payload, dict):
                payload.setdefault("type", kind)
            return [payload]

        return unpack

    for kind in SINGLE:

        async def post_one(request: Request, kind: str = kind) -> Response:
            return await handle(request, single(kind))

        app.add_api_route(f"/v1/{kind}", post_one, methods=["POST"], name=f"post_{kind}")

    @app.get("/health")
    def health() -> Response:
        status = daemon.health()
        return JSONResponse(status, status_code=200 if status["status"] == "ok" else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        daemon.refresh_gauges()
        return Response(generate_latest(daemon.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
