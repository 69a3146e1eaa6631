"""The trust configuration on disk: policy files, key files and registries.d, read at each pull."""

from pathlib import Path

from ports.signatures import TrustFileError

# Larger than any policy, key or registries.d file; a path to something huge is refused, not read.
MAX_FILE_BYTES = 4 << 20


class LocalTrustFiles:
    def read(self, path: str) -> bytes | None:
        file = Path(path)
        try:
            with file.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise TrustFileError(f"{path}: {err.strerror or err}") from None
        if len(data) > MAX_FILE_BYTES:
            raise TrustFileError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        return data

    def yaml_files(self, directory: str) -> list[tuple[str, str]]:
        folder = Path(directory)
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.glob("*.yaml")):
            data = self.read(str(path))
            if data is None:
                continue
            try:
                found.append((str(path), data.decode()))
            except UnicodeDecodeError as err:
                raise TrustFileError(f"{path}: {err}") from None
        return found
