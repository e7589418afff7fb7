"""The overhead bench's figures: one row per peer x scenario x concurrency, the table, and issue 11's targets."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.measure import Phase

LITELLM, OURS = "LiteLLM", "ours"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


@dataclass
class Row:
    """One peer x scenario at one concurrency; `cosmos_*` stay None where there is no Cosmos (LiteLLM)."""

    peer: str
    scenario: str
    concurrency: int
    ok: int
    hit_pct: float
    failed: dict[str, int]
    p50_ms: float
    p99_ms: float
    added_p50_ms: float
    added_p99_ms: float
    req_per_s: float
    gateway_cpu_ms: float
    stub_cpu_ms: float
    rss_mb: float
    cosmos_cpu_ms: float | None = None
    cosmos_requests: float | None = None
    cosmos_by_operation: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, peer: str, scenario: str, concurrency: int, phase: Phase, *, latency_ms: float,
           rss: float) -> Row:
        lat = phase.result.latencies_ms
        n = max(1, sum(phase.result.statuses.values()))
        p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
        cosmos = phase.cpu_ms.get("cosmos")
        return cls(peer, scenario, concurrency, len(lat), round(100 * phase.result.cache_hits / n, 1),
                   {s: c for s, c in phase.result.statuses.items() if s != "200"},
                   round(p50, 1), round(p99, 1), round(p50 - latency_ms, 1), round(p99 - latency_ms, 1),
                   round(len(lat) / phase.result.wall_s, 1), round(phase.cpu_ms["gateway"] / n, 2),
                   round(phase.cpu_ms["stub"] / n, 2), round(rss, 1),
                   None if cosmos is None else round(cosmos / n, 2))

    def count(self, counts: Counter[str], requests: int) -> None:
        """The Cosmos requests the counting pass saw for this scenario, per API request."""
        self.cosmos_requests = round(sum(counts.values()) / requests, 2)
        self.cosmos_by_operation = {k: round(v / requests, 2) for k, v in sorted(counts.items())}


HEADER = (f"{'peer':<10} {'scenario':<22} {'c':>3} {'ok':>5} {'hit%':>5} {'p50':>7} {'+p50':>7} {'+p99':>7} "
          f"{'req/s':>7} {'gw cpu':>7} {'db cpu':>7} {'db req':>6} {'rss MB':>7}  failed")


def _opt(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.1f}"


def table(rows: list[Row]) -> str:
    lines = [HEADER, "-" * len(HEADER)]
    for r in rows:
        failed = ", ".join(f"{s}:{c}" for s, c in sorted(r.failed.items())) or ""
        lines.append(f"{r.peer:<10} {r.scenario:<22} {r.concurrency:>3} {r.ok:>5} {r.hit_pct:>5.0f} {r.p50_ms:>7.1f} "
                     f"{r.added_p50_ms:>+7.1f} {r.added_p99_ms:>+7.1f} {r.req_per_s:>7.1f} {r.gateway_cpu_ms:>7.2f} "
                     f"{_opt(r.cosmos_cpu_ms, 7)} {_opt(r.cosmos_requests, 6)} {r.rss_mb:>7.1f}  {failed}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    what: str
    value: float | None
    op: str  # "<=" or ">="
    limit: float
    unit: str = "x"

    @property
    def verdict(self) -> str:
        if self.value is None or self.value != self.value:  # missing peer, or NaN
            return "n/a"
        ok = self.value <= self.limit if self.op == "<=" else self.value >= self.limit
        return "PASS" if ok else "MISS"

    def line(self) -> str:
        shown = "-" if self.value is None else f"{self.value:.2f}{self.unit}"
        return f"{self.what:<58} {shown:>10}  target {self.op} {self.limit:g}{self.unit}  {self.verdict}"


def _find(rows: list[Row], peer: str, scenario: str, concurrency: int) -> Row | None:
    return next((r for r in rows if (r.peer, r.scenario, r.concurrency) == (peer, scenario, concurrency) and r.ok),
                None)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def targets(rows: list[Row], c: int, extras: dict[str, Any]) -> list[Target]:
    """Issue 11 point 3 (ratios, same run), point 4 (start) and point 5 (RSS)."""
    lite, lite1, lite_hit = (_find(rows, LITELLM, "plain", c), _find(rows, LITELLM, "plain", 1),
                             _find(rows, LITELLM, "cache hits", 1))
    plain, full = _find(rows, OURS, "plain", c), _find(rows, OURS, "full (misses)", c)
    full1, hit = _find(rows, OURS, "full (misses)", 1), _find(rows, OURS, "exact hits", 1)

    def get(row: Row | None, attr: str) -> float | None:
        return None if row is None else float(getattr(row, attr))

    ours = [r for r in rows if r.peer == OURS]
    return [
        Target(f"CPU/request ours plain / LiteLLM plain, c={c}", _ratio(get(plain, "gateway_cpu_ms"),
                                                                       get(lite, "gateway_cpu_ms")), "<=", 0.5),
        Target(f"CPU/request ours full / LiteLLM plain, c={c}", _ratio(get(full, "gateway_cpu_ms"),
                                                                      get(lite, "gateway_cpu_ms")), "<=", 0.6),
        Target(f"req/s ours plain / LiteLLM plain, c={c}", _ratio(get(plain, "req_per_s"),
                                                                 get(lite, "req_per_s")), ">=", 2.0),
        Target(f"req/s ours full / LiteLLM plain, c={c}", _ratio(get(full, "req_per_s"),
                                                                get(lite, "req_per_s")), ">=", 2.0),
        Target("added p50 ours full / LiteLLM plain, c=1", _ratio(get(full1, "added_p50_ms"),
                                                                  get(lite1, "added_p50_ms")), "<=", 1.0),
        Target("p50 ours exact hit / LiteLLM cache hit, c=1", _ratio(get(hit, "p50_ms"),
                                                                     get(lite_hit, "p50_ms")), "<=", 1.5),
        Target("import function_app (median of fresh processes)", extras.get("import_s"), "<=", 1.0, " s"),
        Target("first answer after the app process starts (slowest start)", extras.get("first_answer_s"),
               "<=", 2.0, " s"),
        Target("RSS of our gateway after load (largest)", max((r.rss_mb for r in ours), default=None),
               "<=", 250, " MB"),
    ]
