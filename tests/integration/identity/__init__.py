"""Identity against local protocol servers (no emulators needed)."""
