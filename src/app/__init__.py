"""Configuration, wiring and the entry point."""
