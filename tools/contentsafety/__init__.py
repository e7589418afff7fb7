"""A local Azure AI Content Safety and Language server: their REST protocol, deterministic rules (README.md)."""
