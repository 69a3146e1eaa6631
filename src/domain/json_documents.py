"""JSON from outside (image configs, manifests, seccomp profiles) read without surprises.

Python's json raises RecursionError, not ValueError, on a document nested a few thousand levels deep, and
UnicodeDecodeError (a ValueError) on bytes that are not UTF-8: both are the document's fault and become the
error class the caller names, with the reason.
"""

import json
from typing import Any

from domain.errors import InvalidArgument, PycrioError


def load_json(raw: bytes | str, what: str, error: type[PycrioError] = InvalidArgument) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise error(f"{what}: not valid JSON: nested too deeply") from None
    except ValueError as err:
        raise error(f"{what}: not valid JSON: {str(err)[:200]}") from None
