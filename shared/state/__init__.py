"""Cosmos DB state: budgets, rate-limit counters, the response cache.

Imports core, observability, identity and upstream (protocol, embeddings).
"""
