"""Command line: `python -m tools.devhost [--host 127.0.0.1] [--port 7071] [--script-root .]`."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import logging
import os
import signal
import sys
import threading
import tracemalloc
from collections import Counter, deque
from collections.abc import Callable
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
    _watch_memory(os.environ.get(MEMORY_SETTING), os.environ.get(TRACE_SETTING) == "1")
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


MEMORY_SETTING = "DEVHOST_MEMORY_DIR"  # a bench's settings, not the host's: Azure never sets them
TRACE_SETTING = "DEVHOST_TRACEMALLOC"
TRACE_FRAMES = 12
_CONTAINERS = (dict, set, list, deque)


def _watch_memory(folder: str | None, trace: bool) -> None:
    """With DEVHOST_MEMORY_DIR set (`python -m bench soak`), each SIGUSR1 writes the live objects
    counted by type and the sizes of large containers, `<n>.types.json`, into that folder. With
    DEVHOST_TRACEMALLOC=1 the first signal starts tracemalloc (after the bench's warm-up: tracing
    from the start would slow the warm-up several times over) and each later one also writes a
    snapshot, `<n>.snap`."""
    if not folder:
        return
    taken = 0

    def dump(signum: int, frame: object) -> None:
        nonlocal taken
        taken += 1
        if trace and tracemalloc.is_tracing():
            _write(Path(folder) / f"{taken}.snap", lambda path: tracemalloc.take_snapshot().dump(str(path)))
        elif trace:
            tracemalloc.start(TRACE_FRAMES)
        heap = _malloc_heap()  # before the counting below allocates
        gc.collect()
        live = gc.get_objects()
        by_type = Counter(map(type, live))  # named per type, not per object: far fewer allocations to trace
        types: Counter[str] = Counter()
        for kind, count in by_type.items():
            types[f"{kind.__module__}.{kind.__qualname__}"] += count
        sizes = {f"{type(o).__qualname__}@{id(o):x}": len(o) for o in live
                 if isinstance(o, _CONTAINERS) and len(o) >= 64}
        del live
        _write(Path(folder) / f"{taken}.types.json",
               lambda path: path.write_text(json.dumps({"types": types, "sizes": sizes, "heap": heap})))

    signal.signal(signal.SIGUSR1, dump)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _malloc_heap() -> dict[str, int]:
    """glibc's malloc in use and free (bytes): what Python's small-object allocator does not hold
    (objects over 512 bytes, C and Rust extensions); empty where there is no mallinfo2."""
    try:
        info = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return {}
    info.restype = _MallInfo2
    got = info()
    return {"in_use": got.uordblks + got.hblkhd, "free": got.fordblks}


def _write(target: Path, write: Callable[[Path], object]) -> None:
    partial = target.with_suffix(".part")
    write(partial)
    partial.rename(target)  # the bench waits for the name: it appears only once the file is whole


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
