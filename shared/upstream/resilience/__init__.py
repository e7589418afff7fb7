"""Resilience for model calls: retry, circuit breakers, priority failover, retry budget."""
