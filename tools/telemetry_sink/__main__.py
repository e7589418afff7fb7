"""`python -m tools.telemetry_sink appinsights|otlp [--port N]`: receive the app's telemetry and print it."""

from __future__ import annotations

import argparse
import sys
import time

from tools.telemetry_sink import Sink, appinsights, otlp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.telemetry_sink", description=(__doc__ or "").strip())
    parser.add_argument("protocol", choices=["appinsights", "otlp"])
    parser.add_argument("--port", type=int, default=None, help="default 4318 (otlp) or 4319 (appinsights)")
    args = parser.parse_args(argv)
    module = otlp if args.protocol == "otlp" else appinsights
    port = args.port or (4318 if args.protocol == "otlp" else 4319)
    sink = Sink(module.handle, port, echo=lambda item: print(module.describe(item), flush=True))
    if args.protocol == "otlp":
        print(f"OTLP/HTTP receiver on {sink.url}: run the app with OTEL_EXPORTER_OTLP_ENDPOINT={sink.url}", flush=True)
    else:
        print("Application Insights receiver: run the app with APPLICATIONINSIGHTS_CONNECTION_STRING="
              f"'{appinsights.connection_string(sink.url)}'", flush=True)
    with sink:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
