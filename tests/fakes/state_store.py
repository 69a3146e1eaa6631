"""An in-memory StateStore: same validation and copy semantics as the file adapter, no disk."""

import copy
import json
import threading
from collections.abc import Mapping
from typing import Any

from domain.errors import ResourceExhausted
from domain.names import check_plain_name
from ports.state_store import Document


class InMemoryStateStore:
    def __init__(self) -> None:
        self._kinds: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.full = False  # a test's full disk: every put fails as the file store's does

    def put(self, kind: str, key: str, document: Mapping[str, Any]) -> None:
        check_plain_name("state kind", kind)
        check_plain_name("state id", key)
        encoded = json.dumps(document, sort_keys=True)  # same serialisability rules as the file store
        if self.full:
            raise ResourceExhausted(f"no space left to record {kind} {key} in the fake store")
        with self._lock:
            self._kinds.setdefault(kind, {})[key] = encoded

    def get(self, kind: str, key: str) -> Document | None:
        check_plain_name("state kind", kind)
        check_plain_name("state id", key)
        with self._lock:
            encoded = self._kinds.get(kind, {}).get(key)
        return None if encoded is None else copy.deepcopy(json.loads(encoded))

    def delete(self, kind: str, key: str) -> None:
        check_plain_name("state kind", kind)
        check_plain_name("state id", key)
        with self._lock:
            self._kinds.get(kind, {}).pop(key, None)

    def list(self, kind: str) -> dict[str, Document]:
        check_plain_name("state kind", kind)
        with self._lock:
            items = dict(self._kinds.get(kind, {}))
        return {key: json.loads(value) for key, value in sorted(items.items())}
