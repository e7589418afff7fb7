"""Core: errors, values, models, settings, the clock, token counting and the meter.

Imports nothing of shared/ outside core.
"""
