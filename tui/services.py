"""What the app calls into `stack/` through: injectable, so tests can pass frozen results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stack.doctor import Check, run_checks
from stack.settings import Settings, set_setting
from tui.local_models import LocalModel, scan_models


@dataclass(frozen=True)
class Services:
    """The blocking calls the screens make, each run in a thread worker."""

    run_checks: Callable[[Settings], list[Check]] = field(default=run_checks)
    scan_models: Callable[[Path], list[LocalModel]] = field(default=scan_models)
    set_setting: Callable[[Settings, str, str], Settings] = field(default=set_setting)
