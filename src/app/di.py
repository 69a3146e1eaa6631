"""dependency-injector, imported without PyYAML.

Its `providers` module imports PyYAML whenever it is installed, for `Configuration.from_yaml`, which pycrio
never calls. pycrio reads YAML only in registries.d files, at a pull that checks signatures
(domain/registries_d.py imports it then). Hiding PyYAML for this one import keeps its 19 modules (about
0.9 MiB) out of the idle daemon (docs/bench.md, "Idle cost"); a later `import yaml` works as usual.
"""

import sys

_HIDE_YAML = "yaml" not in sys.modules
if _HIDE_YAML:
    sys.modules["yaml"] = None  # type: ignore[assignment]  # `import yaml` raises ImportError meanwhile
try:
    from dependency_injector import containers, providers
finally:
    if _HIDE_YAML:
        del sys.modules["yaml"]

__all__ = ["containers", "providers"]
