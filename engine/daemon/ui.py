"""`/ui`: a read-only dashboard served by the daemon — the funnel, open MQLs with their SLA
clock, recent decisions, a prospect search that shows the explanation, and the shadow rule
set's "would have" decisions against live (`/ui/shadow`).

Behind an admin token (`LEADRULES_ADMIN_TOKEN`), separate from the ingest write keys: a
write key sits in every web page that tracks, so it must never open the dashboard. Without
the variable the dashboard is off (404). The token is given as HTTP Basic password (any
user name) or `Authorization: Bearer TOKEN`. Server-rendered HTML, no script, no build step.
"""

from __future__ import annotations

import base64
import hmac
import os
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import DictLoader, Environment, select_autoescape
from starlette.concurrency import run_in_threadpool

from leadrules.engine.clock import Clock
from leadrules.engine.daemon import ui_data, ui_shadow
from leadrules.engine.daemon.store import Store
from leadrules.engine.daemon.ui_pages import PAGES

TOKEN_VARIABLE = "LEADRULES_ADMIN_TOKEN"
_ENV = Environment(loader=DictLoader(PAGES), autoescape=select_autoescape(default=True))
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


@runtime_checkable
class UiHost(Protocol):
    """What the dashboard reads (`runtime.Daemon` has it)."""

    store: Store
    clock: Clock
    service: Any


def _token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def _refused(expected: str | None, request: Request) -> Response | None:
    if not expected:
        return Response("the dashboard is off: set LEADRULES_ADMIN_TOKEN", status_code=404)
    given = _token_of(request)
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        return Response(
            "admin token required",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="leadrules dashboard"'},
        )
    return None


def _page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_ENV.get_template(name).render(**context), headers=HEADERS)


def router(host: UiHost) -> APIRouter:
    routes = APIRouter(prefix="/ui", include_in_schema=False)

    def overview() -> dict[str, Any]:
        now = host.clock.now_us()
        with host.store.session() as session:
            return {
                "funnel": ui_data.funnel(session),
                "open_mqls": ui_data.open_mqls(session, host.service.rules, now),
                "decisions": ui_data.recent_decisions(session),
            }

    def prospect(prospect_id: str) -> dict[str, Any] | None:
        now = host.clock.now_us()
        with host.store.session() as session:
            return ui_data.explain(session, host.service.rules, prospect_id, now)

    @routes.get("")
    async def dashboard(request: Request) -> Response:
        refused = _refused(os.environ.get(TOKEN_VARIABLE), request)
        if refused is not None:
            return refused
        return _page("dashboard.html", **(await run_in_threadpool(overview)))

    @routes.get("/prospect")
    async def explain(request: Request, id: str = "") -> Response:
        refused = _refused(os.environ.get(TOKEN_VARIABLE), request)
        if refused is not None:
            return refused
        found = await run_in_threadpool(prospect, id.strip()) if id.strip() else None
        response = _page("prospect.html", query=id, p=found)
        if found is None:
            response.status_code = 404
        return response

    @routes.get("/shadow")
    async def shadow(request: Request) -> Response:
        refused = _refused(os.environ.get(TOKEN_VARIABLE), request)
        if refused is not None:
            return refused
        loop = getattr(host, "shadow", None)
        return _page("shadow.html", s=await run_in_threadpool(ui_shadow.view, host.store, loop))

    return routes


def add_ui(app: FastAPI, daemon: object) -> None:
    """Mount `/ui` when `daemon` has a store, a clock and a service (the real daemon)."""
    if isinstance(daemon, UiHost):
        app.include_router(router(daemon))
