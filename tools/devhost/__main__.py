"""Command line: `python -m tools.devhost [--host 127.0.0.1] [--port 7071] [--script-root .]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
from pathlib import Path

from tools.devhost.errors import StartupError
from tools.devhost.host import Options, serve

log = logging.getLogger("devhost")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.devhost",
                                     description="Serve function_app.py like `func start` (HTTP and queue triggers).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: local.settings.json Host.LocalHttpPort, else 7071)")
    parser.add_argument("--script-root", type=Path, default=Path(),
                        help="folder holding function_app.py, host.json and local.settings.json (default .)")
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        code = asyncio.run(serve(Options(args.host, args.port, args.script_root)))
    except StartupError as exc:
        log.error("devhost cannot start: %s", exc, exc_info=exc.__cause__ is not None)
        return 1
    busy = [t for t in threading.enumerate() if t.name.startswith("devhost-sync")]
    for thread in busy:
        thread.join(0.5)  # idle pool threads leave at once after the pool shut down
    if any(t.is_alive() for t in busy):
        # A sync function past the grace period cannot be stopped; do not let it hold the process open.
        log.warning("synchronous invocations are still running; exiting without them")
        logging.shutdown()
        os._exit(code)
    return code


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # The Azure SDK logs every HTTP request at INFO; the host shows its warnings only.
    logging.getLogger("azure").setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
