"""Local servers speaking the identity protocols: Entra (OIDC keys, tokens), managed identity, Key Vault."""
