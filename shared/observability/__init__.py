"""Traces, metrics, logs and the audit record. Imports only core and api."""
