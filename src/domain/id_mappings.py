"""ID mappings of a user namespace (CRI IDMapping), as the domain keeps them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class IdMapping:
    container_id: int
    host_id: int
    length: int

    def line(self) -> str:
        """The mapping as a line of /proc/<pid>/uid_map."""
        return f"{self.container_id} {self.host_id} {self.length}\n"


@dataclass(frozen=True)
class UserNamespace:
    """The mappings of a pod's user namespace (mode POD)."""

    uids: tuple[IdMapping, ...]
    gids: tuple[IdMapping, ...]

    @property
    def root_uid(self) -> int:
        """The host uid of the pod's root: the owner pycrio gives the files it writes for the pod."""
        return self.uids[0].host_id

    @property
    def root_gid(self) -> int:
        return self.gids[0].host_id

    @classmethod
    def from_record(cls, record: dict[str, list[dict[str, int]]]) -> "UserNamespace":
        return cls(
            uids=tuple(IdMapping(**m) for m in record["uids"]),
            gids=tuple(IdMapping(**m) for m in record["gids"]),
        )
