"""calfrehab: decision support for calf-strengthening rehabilitation.

The library lives in :mod:`calfrehab.engine`, the command line in
:mod:`calfrehab.cli` and the shipped knowledge base in :mod:`calfrehab.rules`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("calfrehab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
