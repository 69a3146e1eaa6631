"""Pod namespaces pinned under the run dir, and the infra process that holds the PID namespace."""
