"""Pod networking through CNI plugins (the CNI spec 0.4.0 and 1.x)."""
