"""Glue between two domain services (what one needs of the other), built only by app/container.py."""
