"""Trigger adapters: one blueprint per trigger family. They parse, call shared/, map errors."""
