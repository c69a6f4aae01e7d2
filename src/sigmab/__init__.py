"""sigmab: rebuild pretrained dense networks as routed single-path trees (SigmaB-Nets)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sigmab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

from sigmab.errors import SigmabError

__all__ = ["SigmabError", "__version__"]
