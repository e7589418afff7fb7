"""`python -m bench.routing_judge` against the real simulator in process: it asks each in-band request's
second opinion as the gateway asks it, and prints the scorer alone and with the judge, targets marked."""

from __future__ import annotations

import httpx2
import pytest

from bench import routing, routing_judge
from tools.simulator.app import create_app
from tools.simulator.config import SimulatorConfig


def test_the_judge_bench_asks_each_request_inside_the_band_and_reports_both(
        capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app(SimulatorConfig())
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://simulator")
    band = (0.3, 0.7)
    scores = routing.scores_of([r for r in routing.load_set("bare") if r.split == "test" and r.batch == "blind2"])
    inside = sum(band[0] <= s < band[1] for s in scores)

    assert routing_judge.main(["--base-url", "http://simulator/v1", "--model", "gpt-4o-mini", "--set", "bare",
                               "--batch", "blind2", "--band", *map(str, band)], http_client=client) == 0

    printed = capsys.readouterr().out
    assert f"{inside} inside the band, judged" in printed and 0 < inside < len(scores)
    assert app.state.simulator.stats.snapshot()["requests"] == inside, "one call per request inside the band"
    assert "scorer alone" in printed and "with the second opinion" in printed
    assert printed.count("target <= 5%") == 2 and printed.count("target >= 50%") == 2


def test_a_band_that_is_no_band_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        routing_judge.main(["--base-url", "http://x/v1", "--model", "m", "--band", "0.7", "0.3"])
    assert refused.value.code == 2 and "band must be" in capsys.readouterr().err
