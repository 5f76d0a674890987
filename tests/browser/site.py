"""The website: a second local origin serving the page and the bundled tracker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass
class Site:
    url: str
    served: list[str]  # paths the browser asked this origin for


@contextmanager
def website(bundle: Path, settings: dict[str, Any]) -> Iterator[Site]:
    """Serve `site.html` at every path, `/tracker.js` = `bundle`, and `/settings.js`."""
    page = (HERE / "site.html").read_bytes()
    files = {
        "/tracker.js": (bundle.read_bytes(), "text/javascript"),
        "/settings.js": (
            f"window.leadrules = {json.dumps(settings)};\n".encode(),
            "text/javascript",
        ),
    }
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            served.append(path)
            body, kind = files.get(path, (page, "text/html; charset=utf-8"))
            if path.endswith(".js") and path not in files:
                body, kind = b"not here", "text/plain"
                self.send_response(404)
            else:
                self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}", served)
    finally:
        server.shutdown()
        server.server_close()
