"""Settings of one simulated model region, shared by the CLI and in-process users."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatorConfig:
    """What makes one simulator instance behave like one provider region."""

    region: str = "primary"
    ms_per_token: float = 2.0
    base_latency_ms: float = 20.0
    # Seeds both the answers and the fault dice, so a run can be replayed exactly.
    seed: int = 0
    embedding_dims: int = 256
    # The deployments this region serves (Azure routes): any other is a 404 DeploymentNotFound.
    # Empty: every name is served, as before.
    deployments: tuple[str, ...] = ()
    # The deployment's quota, reported in x-ratelimit-remaining-* (not enforced).
    requests_per_minute: int = 1_000
    tokens_per_minute: int = 1_000_000

    def __post_init__(self) -> None:
        if not self.region:
            raise ValueError("region must not be empty")
        if self.ms_per_token < 0 or self.base_latency_ms < 0:
            raise ValueError("latencies must be >= 0")
        if not 1 <= self.embedding_dims <= MAX_EMBEDDING_DIMS:
            raise ValueError(f"embedding_dims must be 1..{MAX_EMBEDDING_DIMS}")


MAX_EMBEDDING_DIMS = 8192
