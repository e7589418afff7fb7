"""Serves a Starlette app with uvicorn in a background thread, on a free port, over HTTP or HTTPS."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from tools.localenv import free_port


class Served:
    """One running server; `stop()` ends it. Reachable from the app process too (loopback)."""

    def __init__(self, app: Starlette, *, certfile: Path | None = None, keyfile: Path | None = None) -> None:
        self.port = free_port()
        scheme = "https" if certfile else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
                                ssl_certfile=str(certfile) if certfile else None,
                                ssl_keyfile=str(keyfile) if keyfile else None)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"serve-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
