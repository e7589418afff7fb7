"""The admin API's service: tenants, keys and usage at run time (docs/admin.md). Imports state and below."""
