"""How a test tier reacts when a real part it needs cannot start.

Outside CI the test is skipped with the reason printed. Under ``CI=true`` a missing real
part is a failure: CI must never pass by silently skipping the engine or server tiers.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(part: str, reason: str) -> NoReturn:
    """Skip (or, under CI, fail) because ``part`` cannot run here."""
    message = f"{part} unavailable: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: real tiers may not be skipped)", pytrace=False)
    pytest.skip(message)
