"""The rooms and who may import whom: the layout docs/design.md draws, read from the code.

Data flow one way — source → raw → clean → marts → reports → phones — and each room knows only
the rooms below it. A lazy import (inside a function) is no way around it: every import counts.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# room → the rooms (or single modules) of ours it may import; flows may import anything.
ALLOWED: dict[str, set[str]] = {
    "schemas": set(),
    "connectors": {"schemas"},
    # The one piece the simulators share with the receiver: serving an ASGI app on loopback.
    "simulators": {"schemas", "connectors.serving"},
    "warehouse": {"schemas"},
    "marts": {"warehouse", "schemas"},
    "reports": {"marts", "warehouse", "schemas"},
    "phones": {"connectors", "warehouse", "marts", "schemas"},
    "flows": {"schemas", "connectors", "simulators", "warehouse", "marts", "reports", "phones"},
}
ROOMS = sorted(ALLOWED)
MAX_LINES = 620  # "about 600": a module past it has more than one concern in it


def python_files(room: str) -> list[Path]:
    """The folder's modules; hidden folders left out (`make bench` installs the peers it
    compares with into bench/.venv-peers, git-ignored: not our code)."""
    return sorted(
        path
        for path in (ROOT / room).rglob("*.py")
        if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    )


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import of ours in a file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "sammachip":  # `from sammachip import marts`
                found += [(node.lineno, f"sammachip.{a.name}") for a in node.names]
            else:
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in {"sammachip", *ROOMS}]


def allowed(room: str, module: str) -> bool:
    target = module.removeprefix("sammachip.")
    if target.split(".")[0] == room:
        return True
    return any(target == a or target.startswith(f"{a}.") for a in ALLOWED[room])


@pytest.mark.parametrize("room", ROOMS)
def test_each_room_imports_only_the_rooms_below_it(room: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in python_files(room)
        for line, module in imported_modules(path)
        if not allowed(room, module)
    ]
    assert not wrong, f"{room} may import only {sorted(ALLOWED[room]) or 'nothing of ours'}"


def test_every_import_goes_through_the_one_sammachip_root() -> None:
    """`flows`, `schemas`, … are folders, not installed names: a bare `import flows` would load a
    second copy of a module beside `sammachip.flows` (or nothing, outside the checkout)."""
    bare = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for folder in [*ROOMS, "tests", "bench"]
        for path in python_files(folder)
        for line, module in imported_modules(path)
        if not module.startswith("sammachip.")
    ]
    assert not bare


def test_the_installed_packages_are_the_rooms_folders() -> None:
    """pyproject.toml lists the packages (the `sammachip` root maps onto the repository):
    a new sub-package that is not listed would be missing from an installed wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    folders = {"sammachip"} | {
        "sammachip." + ".".join(init.parent.relative_to(ROOT).parts)
        for room in ROOMS
        for init in (ROOT / room).rglob("__init__.py")
    }
    assert listed == folders


def test_no_module_holds_more_than_one_concerns_worth_of_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for folder in [*ROOMS, "bench", "tests"]
        for path in python_files(folder)
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        # The simulators' own tests specify a whole server each: long by nature.
        and not path.is_relative_to(ROOT / "tests" / "simulators")
    }
    assert not long
