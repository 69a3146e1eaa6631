"""Where runtime objects (sandboxes, containers, images) are kept so they survive a daemon restart."""

from collections.abc import Mapping
from typing import Any, Protocol

Document = dict[str, Any]


class StateStore(Protocol):
    """A store of JSON-serialisable documents, grouped by kind and keyed by id.

    Writes are atomic: after a crash a document is either the old version or the new one, never torn.
    Kinds and ids are plain names (letters, digits, `-`, `_`, `.`; not starting with `.`).
    """

    def put(self, kind: str, key: str, document: Mapping[str, Any]) -> None:
        """Create or replace one document."""
        ...

    def get(self, kind: str, key: str) -> Document | None:
        """The document, or None when absent."""
        ...

    def delete(self, kind: str, key: str) -> None:
        """Remove one document; removing an absent one is not an error."""
        ...

    def list(self, kind: str) -> dict[str, Document]:
        """Every document of a kind, by id."""
        ...
