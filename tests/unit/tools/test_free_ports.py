"""Free local ports for the test stacks come from below the kernel's ephemeral range."""

from __future__ import annotations

import itertools
import socket
from dataclasses import astuple

import pytest

from tools import localenv
from tools.localenv import Ports, free_port


def test_a_stacks_ports_are_distinct_and_below_the_ephemeral_range() -> None:
    """Binding port 0 hands out an ephemeral port, which any outgoing connection may take before the
    server binds it (a whole session once failed: `port 54127 is already in use`)."""
    ports = astuple(Ports.free())
    assert len(set(ports)) == len(ports)
    assert all(1024 <= port < localenv._ephemeral_low() for port in ports)


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_port()))
        busy.listen()
        listening, other = busy.getsockname()[1], free_port()
        picks = iter([listening, other])  # the random pick lands on the busy port first
        monkeypatch.setattr(localenv._PICK, "randrange", lambda low, high: next(picks))
        assert free_port() == other


def test_parallel_workers_pick_ports_from_parts_that_never_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each pytest-xdist worker starts its own stack at the same moment as the others.
    parts = []
    for index in range(4):
        monkeypatch.setattr(localenv, "_share", (0, 1))
        localenv.share_ports(index, 4)
        parts.append(localenv.port_range())
        assert parts[-1][0] <= free_port() < parts[-1][1]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(parts))
    with pytest.raises(ValueError, match="port share 4 of 4 does not exist"):
        localenv.share_ports(4, 4)
