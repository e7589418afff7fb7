"""Routing: the offline complexity scorer that picks a route's simple or complex model.

Imports nothing of shared/ but shared.core.
"""
