"""Pure lifecycle logic for pods, containers and images: no I/O, only ports."""
