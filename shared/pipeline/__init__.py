"""The request pipeline every model-bound operation goes through.

Imports every layer below it, never functions/, jobs or the composition root.
"""
