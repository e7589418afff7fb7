"""Service code shared by every trigger: config, composition root, request path, adapters."""
