"""The installed version of ClawFleet, read from the package metadata (cheap: no imports of the
server), so `clawfleet --version` answers at once."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version


def clawfleet_version() -> str:
    try:
        return package_version("clawfleet")
    except PackageNotFoundError:  # not installed as a distribution (e.g. a bare source tree)
        return "0.0.0+unknown"
