"""A simulator process shared by the tests of a module, started the way a developer starts it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.simulator.process import SimulatorProcess


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    # The log goes under pytest's temp dir, which keeps the last runs for reading after a failure.
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    with SimulatorProcess("--region", "primary", "--seed", "7", log_path=log) as sim:
        yield sim
