"""The per-pod files the containers bind-mount."""
