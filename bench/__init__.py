"""Benchmarks: each prints figures; none asserts timings (machines are noisy)."""
