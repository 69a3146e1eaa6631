"""Persistence of runtime objects across daemon restarts."""
