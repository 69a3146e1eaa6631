"""pycrio's version, the one place it is written (pyproject.toml reads it from here).

A constant rather than `importlib.metadata`, which pulls in email, csv and zipfile (about 2.6 MiB of the
daemon's memory) to read one line.
"""

VERSION = "0.1.0"
