"""Command line: `python -m tools.contentsafety --port 7103 [--key local-safety-key]` (README.md)."""

from __future__ import annotations

import argparse

import uvicorn

from tools.contentsafety.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.contentsafety", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="the only address to bind")
    parser.add_argument("--port", type=int, default=7103)
    parser.add_argument("--key", default="local-safety-key", help="the Ocp-Apim-Subscription-Key accepted")
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.key), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
