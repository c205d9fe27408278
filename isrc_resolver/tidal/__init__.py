"""TIDAL: its spec (spec.py) is what the rest of the code knows; its client is
loaded by name, through the registry."""
