"""`python -m tests.support.fake_nvml`: build the fake NVML library, print its folder."""

from __future__ import annotations

import sys

from tests.support.fake_nvml import BuildFailed, build

try:
    print(build())
except (BuildFailed, OSError) as error:
    print(f"fake NVML: {error}", file=sys.stderr)
    sys.exit(1)
