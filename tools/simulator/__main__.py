"""Command line: serve one simulated region with uvicorn, e.g. `python -m tools.simulator --port 7101`."""

from __future__ import annotations

import argparse
import logging
import socket
import sys

import uvicorn

import tools.simulator
from tools.simulator.app import create_app
from tools.simulator.config import SimulatorConfig
from tools.simulator.responses import DroppedConnection
from tools.simulator.service import Simulator

# Long enough for a stream in flight to finish; hung "timeout" requests are released at once.
GRACEFUL_SHUTDOWN_S = 5


class _Server(uvicorn.Server):
    """uvicorn's server, telling the simulator first so requests hanging on purpose end now."""

    def __init__(self, config: uvicorn.Config, simulator: Simulator) -> None:
        super().__init__(config)
        self._simulator = simulator

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._simulator.close()
        await super().shutdown(sockets)


def _hide_intended_drops(record: logging.LogRecord) -> bool:
    # A drop is raised on purpose and already logged as one line; its traceback is noise.
    return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def _parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, SimulatorConfig]:
    parser = argparse.ArgumentParser(
        prog="python -m tools.simulator",
        description=tools.simulator.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="the only address to bind")
    parser.add_argument("--port", type=int, default=7101, help="port to listen on")
    parser.add_argument("--region", default="primary", help="name sent in the x-sim-region header")
    parser.add_argument("--ms-per-token", type=float, default=2.0, help="decode time per generated token")
    parser.add_argument("--base-latency-ms", type=float, default=20.0, help="time before the first token")
    parser.add_argument("--seed", type=int, default=0, help="seeds the answers and the fault sampling")
    parser.add_argument("--embedding-dims", type=int, default=256, help="when a request sets no dimensions")
    parser.add_argument("--deployments", default="",
                        help="comma-separated deployments served on the Azure routes (others: 404); empty: any")
    args = parser.parse_args(argv)
    try:
        config = SimulatorConfig(
            region=args.region,
            ms_per_token=args.ms_per_token,
            base_latency_ms=args.base_latency_ms,
            seed=args.seed,
            embedding_dims=args.embedding_dims,
            deployments=tuple(d.strip() for d in args.deployments.split(",") if d.strip()),
        )
    except ValueError as exc:
        parser.error(str(exc))
    return args, config


def main(argv: list[str] | None = None) -> None:
    args, config = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("uvicorn.error").addFilter(_hide_intended_drops)
    simulator = Simulator(config)
    server_config = uvicorn.Config(
        create_app(simulator=simulator),
        host=args.host,
        port=args.port,
        log_config=None,  # keep the root handler above: one format, all on stderr
        access_log=False,  # the app logs each request once it knows the outcome
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    _Server(server_config, simulator).run()


if __name__ == "__main__":
    main()
