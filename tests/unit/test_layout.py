"""The README's architecture map names every part of the core, and no part that is gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def architecture_map() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def test_every_core_folder_and_module_is_on_the_map() -> None:
    text = architecture_map()
    stack = REPO / "stack"
    folders = sorted(p.name for p in stack.iterdir() if (p / "__init__.py").is_file())
    modules = sorted(p.name for p in stack.glob("*.py") if p.name != "__init__.py")
    assert folders and modules
    for folder in folders:
        assert re.search(rf"^ +{folder}/", text, re.M), f"README map lacks stack/{folder}/"
    for module in modules:
        assert module in text, f"README map lacks stack/{module}"
    for front_end in ("cli/", "tui/"):
        assert re.search(rf"^{front_end}", text, re.M)


def test_the_map_names_nothing_that_does_not_exist() -> None:
    for name in re.findall(r"^ +([a-z_]+)/ ", architecture_map(), re.M):
        assert (REPO / "stack" / name / "__init__.py").is_file(), f"stack/{name}/ is gone"
    for name in re.findall(r"\b([a-z_]+\.py)\b", architecture_map()):
        found = list((REPO / "stack").rglob(name)) + list((REPO / "tui").rglob(name))
        assert found, f"{name} is on the map but not in the code"


# A file past ~400 lines is a part that wants its own module (STYLE); this bound is where
# a file is noticed, not a size to grow to.
LONGEST = 480


def test_no_module_runs_long() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for folder in ("stack", "cli", "tui")
        for p in (REPO / folder).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > LONGEST
    }
    assert long == {}
