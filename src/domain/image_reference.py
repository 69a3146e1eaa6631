"""Image references as docker and containers/image read them.

`busybox`, `busybox:1.36`, `docker.io/busybox`, `127.0.0.1:5000/team/app@sha256:...` and
`name:tag@digest` all name images; this module splits them into registry, repository path, tag and digest,
applies Docker Hub's normalisation (`docker.io/library/` for single-component names) and refuses malformed
names with InvalidArgument, using the grammar of distribution's `reference` package.

A reference comes straight from a request, so its length is bounded before any pattern sees it, and the
patterns cannot backtrack: distribution writes the separator as `[-]*` (harmless in Go's RE2), which in
Python's backtracking engine lets `a` runs split in exponentially many ways (`'a'*26 + '!'` took 10 s
while holding the GIL). Here every repeated piece starts with a character the previous piece cannot
match and every quantifier is possessive, so a match or a failure costs one pass over the text.
"""

import re
from dataclasses import dataclass

from domain.errors import InvalidArgument

DEFAULT_REGISTRY = "docker.io"
LEGACY_DEFAULT_REGISTRY = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255
TAG_LENGTH_MAX = 128
# The longest valid text: a name, `:` and a tag, `@` and a sha512 digest (docker itself refuses more).
REFERENCE_LENGTH_MAX = NAME_TOTAL_LENGTH_MAX + 1 + TAG_LENGTH_MAX + 1 + len("sha512:") + 128
# How much of a refused text an error message repeats.
_QUOTE_MAX = 80

# distribution: alpha-numeric (separator alpha-numeric)*, separator `[._]|__|[-]*`. An empty separator
# only glues two alpha-numeric runs into one, so `[-]*` is `-+` here and the pieces cannot overlap.
_ALPHA_NUMERIC = r"[a-z0-9]++"
_SEPARATOR = r"(?:__|[._]|-++)"
_PATH_COMPONENT = rf"{_ALPHA_NUMERIC}(?:{_SEPARATOR}{_ALPHA_NUMERIC})*+"
# distribution: `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`, i.e. runs of letters and digits
# joined by runs of hyphens.
_DOMAIN_COMPONENT = r"[a-zA-Z0-9]++(?:-++[a-zA-Z0-9]++)*+"
# distribution also accepts bracketed IPv6 literals as a host.
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*+|\[[a-fA-F0-9:]++\])(?::[0-9]++)?+"
_TAG = rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{TAG_LENGTH_MAX - 1}}}+"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*+(?:[-_+.][A-Za-z][A-Za-z0-9]*+)*+:[0-9a-fA-F]{32,}+"

_DOMAIN_RE = re.compile(_DOMAIN)
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*+")
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_IMAGE_ID_RE = re.compile(r"[a-f0-9]{64}")

# Hex lengths of the digest algorithms pycrio can verify.
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class ImageReference:
    """A fully qualified reference: `registry/path[:tag][@digest]`."""

    registry: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """The repository without tag or digest: `docker.io/library/busybox`."""
        return f"{self.registry}/{self.path}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def for_pull(self) -> "ImageReference":
        """What a pull fetches: the digest when there is one (a tag beside it is ignored, as
        containers/image does), else the tag, `latest` by default."""
        if self.digest:
            return ImageReference(self.registry, self.path, "", self.digest)
        return ImageReference(self.registry, self.path, self.tag or DEFAULT_TAG, "")

    @property
    def familiar(self) -> str:
        """The short form docker prints: `busybox:latest` for `docker.io/library/busybox:latest`."""
        if self.registry != DEFAULT_REGISTRY:
            return str(self)
        namespace, _, rest = self.path.partition("/")
        path = rest if namespace == OFFICIAL_NAMESPACE and "/" not in rest else self.path
        return str(ImageReference("", path, self.tag, self.digest)).removeprefix("/")


def check_digest(digest: str) -> str:
    """`digest` if it is `algorithm:hex` of an algorithm pycrio can verify, else InvalidArgument."""
    check_length(digest, "digest")
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidArgument(f"invalid digest {digest!r}: expected algorithm:hex")
    algorithm, _, hex_part = digest.partition(":")
    expected = DIGEST_HEX_LENGTHS.get(algorithm)
    if expected is None:
        raise InvalidArgument(f"invalid digest {digest!r}: unsupported digest algorithm {algorithm!r}")
    if len(hex_part) != expected or hex_part != hex_part.lower():
        raise InvalidArgument(f"invalid digest {digest!r}: {algorithm} needs {expected} lowercase hex digits")
    return digest


def is_short_name(text: str) -> bool:
    """True when `text` names no registry (`busybox`, `team/app:1`), so search registries apply.

    As in docker: the first path component is a registry only if it holds a `.` or `:` or is `localhost`.
    """
    first, slash, _ = text.partition("/")
    if not slash:
        return True
    return not ("." in first or ":" in first or first == "localhost")


def split_repository(text: str) -> tuple[str, str]:
    """`team/app:1@sha256:..` -> (`team/app`, `:1@sha256:..`): the repository part and its tag/digest."""
    rest, at, digest = text.partition("@")
    colon = rest.rfind(":")
    if colon != -1 and "/" not in rest[colon:]:
        return rest[:colon], rest[colon:] + at + digest
    return rest, at + digest


def parse(text: str) -> ImageReference:
    """Parse and normalise a reference; short names land on docker.io as docker does.

    Raises InvalidArgument naming what is wrong.
    """
    _check_not_an_id(text)
    if is_short_name(text):
        return qualify(text, DEFAULT_REGISTRY)
    registry, _, remainder = text.partition("/")
    return _parse_remainder(text, registry, remainder)


def qualify(short_name: str, registry: str) -> ImageReference:
    """The reference a short name means on `registry` (an unqualified-search registry)."""
    _check_not_an_id(short_name)
    if not is_short_name(short_name):
        raise InvalidArgument(f"{short_name!r} is not a short name")
    return _parse_remainder(short_name, registry, short_name)


def check_length(text: str, what: str = "image reference") -> None:
    """InvalidArgument when `text` is longer than any valid reference can be: called before any pattern
    looks at text from a request."""
    if len(text) > REFERENCE_LENGTH_MAX:
        raise InvalidArgument(
            f"invalid {what} {text[:_QUOTE_MAX]!r}...: {len(text)} characters, "
            f"at most {REFERENCE_LENGTH_MAX} are allowed"
        )


def _check_not_an_id(text: str) -> None:
    if not text:
        raise InvalidArgument("invalid image reference: empty")
    check_length(text)
    if _IMAGE_ID_RE.fullmatch(text):
        raise InvalidArgument(
            f"invalid image reference {text!r}: cannot specify 64-byte hexadecimal strings as a name"
        )


def _parse_remainder(text: str, registry: str, remainder: str) -> ImageReference:
    if not _DOMAIN_RE.fullmatch(registry):
        raise InvalidArgument(f"invalid image reference {text!r}: invalid registry host {registry!r}")
    if registry == LEGACY_DEFAULT_REGISTRY:
        registry = DEFAULT_REGISTRY

    rest, at, digest = remainder.partition("@")
    if at:
        _check_digest_in(text, digest)
    path, tag = rest, ""
    colon = rest.rfind(":")
    if colon != -1 and "/" not in rest[colon:]:
        path, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidArgument(f"invalid image reference {text!r}: invalid tag {tag!r}")
    if not path:
        raise InvalidArgument(
            f"invalid image reference {text!r}: repository name must have at least one component"
        )
    if path.lower() != path:
        raise InvalidArgument(f"invalid image reference {text!r}: repository name must be lowercase")
    if not _PATH_RE.fullmatch(path):
        raise InvalidArgument(f"invalid image reference {text!r}: invalid repository name {path!r}")
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    if len(registry) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(
            f"invalid image reference {text!r}: repository name must not be more than "
            f"{NAME_TOTAL_LENGTH_MAX} characters"
        )
    return ImageReference(registry, path, tag, digest if at else "")


def _check_digest_in(text: str, digest: str) -> None:
    try:
        check_digest(digest)
    except InvalidArgument as err:
        raise InvalidArgument(f"invalid image reference {text!r}: {err}") from None
