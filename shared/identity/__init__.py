"""Who is calling (API keys, Entra ID tokens) and secrets (Key Vault). Imports core and observability."""
