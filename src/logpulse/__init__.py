"""logpulse: per-customer service-level numbers and anomaly incidents from API access logs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("logpulse")  # the one version source: [project] version in pyproject.toml
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
