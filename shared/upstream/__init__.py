"""The model endpoints: wire, SSE, the OpenAI protocol, resilience, Semantic Kernel adapter, embeddings.

Imports core, observability and identity.
"""
