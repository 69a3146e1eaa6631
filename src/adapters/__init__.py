"""Implementations of the ports (driven side) and the CRI servers (driving side)."""
