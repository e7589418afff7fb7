"""Local receivers for the app's telemetry: Application Insights' /v2.1/track and OTLP/HTTP.

`python -m tools.telemetry_sink appinsights|otlp --port N` prints what arrives; tests start a
`Sink` in-process and read what it kept. Both keep every item in memory, as received, and answer
what the real services answer, so the real exporters (azure-monitor-opentelemetry, OTLP) send to
them unchanged. Loopback only; for development and tests, never a production collector.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A handler takes (path, content type, body) and returns (status, content type, answer, items kept).
Handler = Callable[[str, str, bytes], tuple[int, str, bytes, list[dict[str, Any]]]]


class Sink:
    """An HTTP server on 127.0.0.1 that keeps what `handler` decodes, in arrival order."""

    def __init__(self, handler: Handler, port: int = 0, echo: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.items: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class _Request(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if (self.headers.get("content-encoding") or "").lower() == "gzip":
                    body = gzip.decompress(body)
                status, media, answer, items = handler(self.path, self.headers.get("content-type") or "", body)
                with sink._lock:
                    sink.items.extend(items)
                for item in items:
                    if echo is not None:
                        echo(item)
                self._answer(status, media, answer)

            def do_GET(self) -> None:
                self._answer(200, "application/json", json.dumps(sink.snapshot()).encode())

            def _answer(self, status: int, media: str, answer: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", media)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: what arrived is the output

        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Request)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.items)

    def start(self) -> Sink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
