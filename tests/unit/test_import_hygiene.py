"""`stack/` is the pure core: importing any of its modules never loads Textual or the UI."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import stack

pytestmark = pytest.mark.unit

FORBIDDEN = ("textual", "rich", "tui")
# Heavy clients are imported inside the functions that use them, never at module scope.
HEAVY = ("docker", "huggingface_hub", "httpx", "pynvml")

MODULES = sorted(
    f"stack.{info.name}" for info in pkgutil.iter_modules([str(Path(stack.__file__).parent)])
)

PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
"""


@pytest.mark.parametrize("module", MODULES)
def test_stack_module_imports_no_ui_and_no_heavy_client(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, module], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    assert not loaded & set(FORBIDDEN), f"{module} loaded {sorted(loaded & set(FORBIDDEN))}"
    assert not loaded & set(HEAVY), f"{module} loaded {sorted(loaded & set(HEAVY))} at import"


def test_the_probe_can_fail() -> None:
    # Guard against a probe that never sees anything: importing the UI must be detected.
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "textual.app"], capture_output=True, text=True, check=True
    ).stdout
    assert "textual" in json.loads(out)
    assert len(MODULES) >= 8
