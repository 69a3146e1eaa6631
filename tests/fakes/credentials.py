"""CredentialStore in memory: entries by key and by namespace, the longest key prefix wins."""

from ports.registry import RegistryAuth


class InMemoryCredentials:
    def __init__(self) -> None:
        # namespace ("" = global) -> key -> credentials
        self.entries: dict[str, dict[str, RegistryAuth]] = {}

    def add(self, key: str, auth: RegistryAuth, namespace: str = "") -> None:
        self.entries.setdefault(namespace, {})[key] = auth

    def lookup(self, reference: str, namespace: str = "") -> RegistryAuth | None:
        name = reference.split("@", 1)[0]
        head, _, last = name.rpartition("/")
        if head and ":" in last:
            name = f"{head}/{last.split(':', 1)[0]}"
        parts = name.split("/")
        for scope in ([namespace] if namespace else []) + [""]:
            table = self.entries.get(scope, {})
            for length in range(len(parts), 0, -1):
                found = table.get("/".join(parts[:length]))
                if found is not None:
                    return found
        return None
