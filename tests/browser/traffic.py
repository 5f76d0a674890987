"""What a page sends over the network, read from Chromium's DevTools protocol: preflights
included (Playwright's own request events do not show them)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

NOTED_REQUEST = (
    "content-type",
    "authorization",
    "origin",
    "anonymousid",
    "sentat",
    "x-retry-count",
    "access-control-request-method",
    "access-control-request-headers",
)
NOTED_RESPONSE = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "vary",
)


@dataclass
class Exchange:
    method: str
    url: str
    kind: str  # DevTools' resource type: Preflight, Fetch, XHR, Script, ...
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    status: int | None = None
    answer: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def line(self) -> str:
        noted = {k: v for k, v in self.headers.items() if k in NOTED_REQUEST}
        if "authorization" in noted:  # the scheme is what matters, not the key
            noted["authorization"] = noted["authorization"].split(" ", 1)[0] + " …"
        said = {k: v for k, v in self.answer.items() if k in NOTED_RESPONSE}
        return f"{self.method} {self.path} [{self.kind}] {noted} -> {self.status} {said}"


class Traffic:
    """Every request one page makes, with the answer's status and headers."""

    def __init__(self, context: Any, page: Any) -> None:
        self.page = page
        self.by_id: dict[str, Exchange] = {}
        self.order: list[Exchange] = []
        self.early: dict[str, dict[str, str]] = {}
        cdp = context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", self._request)
        cdp.on("Network.requestWillBeSentExtraInfo", self._extra)
        cdp.on("Network.responseReceived", self._response)
        cdp.send("Network.enable")

    def _request(self, event: dict[str, Any]) -> None:
        request = event["request"]
        exchange = Exchange(
            request["method"],
            request["url"],
            event.get("type", ""),
            {k.lower(): v for k, v in request.get("headers", {}).items()},
            request.get("postData", ""),
        )
        exchange.headers.update(self.early.pop(event["requestId"], {}))
        self.by_id[event["requestId"]] = exchange
        self.order.append(exchange)

    def _extra(self, event: dict[str, Any]) -> None:
        """The headers as sent on the wire (Origin, Content-Length...), sometimes first."""
        headers = {k.lower(): v for k, v in event.get("headers", {}).items()}
        exchange = self.by_id.get(event["requestId"])
        if exchange is None:
            self.early.setdefault(event["requestId"], {}).update(headers)
        else:
            exchange.headers.update(headers)

    def _response(self, event: dict[str, Any]) -> None:
        exchange = self.by_id.get(event["requestId"])
        if exchange is None:
            return
        response = event["response"]
        exchange.status = response["status"]
        exchange.answer = {k.lower(): v for k, v in response.get("headers", {}).items()}
        if event.get("type") == "Preflight":
            exchange.kind = "Preflight"

    def pump(self, ms: int = 100) -> None:
        """Let the browser run (and DevTools events arrive) for `ms`."""
        self.page.wait_for_timeout(ms)

    def settle(self, origin: str, timeout: float = 10) -> None:
        """Wait until every request to `origin` has its answer."""
        deadline = time.monotonic() + timeout
        while any(e.status is None for e in self.to(origin)) and time.monotonic() < deadline:
            self.pump(50)

    def to(self, origin: str) -> list[Exchange]:
        return [e for e in self.order if e.url.startswith(origin)]

    def foreign(self, *origins: str) -> list[str]:
        """URLs asked of anyone but `origins` (a vendor's CDN, say)."""
        return [e.url for e in self.order if not e.url.startswith(origins)]

    def report(self, name: str, origin: str) -> str:
        """The exchanges with `origin`, one a line; also written to $LEADRULES_TRAFFIC_DIR."""
        text = "\n".join(e.line() for e in self.to(origin))
        folder = os.environ.get("LEADRULES_TRAFFIC_DIR")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / f"{name}.txt").write_text(text + "\n")
            bodies = [{"path": e.path, "body": e.body} for e in self.to(origin) if e.body]
            (Path(folder) / f"{name}.bodies.json").write_text(json.dumps(bodies, indent=1))
        return text
