"""The interfaces the domain depends on; adapters implement them, tests/fakes mirror them."""
