"""A local Azure AI Content Safety and Azure AI Language server: the REST protocol of both, with documented deterministic rules (README.md)."""
