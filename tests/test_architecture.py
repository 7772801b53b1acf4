"""The layout ARCHITECTURE.md describes: no import circle, a core free of Starlette's request handling,
the library apart from the command-line tool, and the map naming every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "twilio_events"
ARCHITECTURE = PACKAGE.parent / "ARCHITECTURE.md"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The modules of the package that `name` imports anywhere: at the top, inside functions (deferred)
    or under TYPE_CHECKING, since each of them ties the two modules together."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target in MODULES:
                found.add(target)
            found.update(
                f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES
            )
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
    return found - {name}


GRAPH = {name: imports_of(name) for name in MODULES}


def reaches(start: str, goal: str) -> bool:
    seen: set[str] = set()
    todo = list(GRAPH[start])
    while todo:
        current = todo.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            todo.extend(GRAPH[current])
    return False


def test_no_module_imports_one_that_imports_it_back() -> None:
    circles = sorted((a, b) for a in GRAPH for b in GRAPH[a] if b != "twilio_events" and reaches(b, a))
    assert circles == []


@pytest.mark.parametrize("core", ["twilio_events.channels", "twilio_events.events", "twilio_events.kinds"])
def test_the_router_events_and_kinds_use_none_of_starlettes_request_handling(core: str) -> None:
    source = MODULES[core].read_text()
    for machinery in ("starlette.requests", "starlette.routing", "starlette.responses", "starlette.types"):
        assert machinery not in source
    assert not {
        name for name in GRAPH[core] if name.startswith(("twilio_events.http", "twilio_events.delivery"))
    }


TOOL = ("twilio_events.cli", "twilio_events.__main__")
"""The command-line tool's modules."""


def test_the_library_never_imports_the_command_line_tool() -> None:
    library = [name for name in MODULES if not name.startswith(TOOL)]
    for name in library:
        assert not {imported for imported in GRAPH[name] if imported.startswith(TOOL)}, name


def test_the_architecture_map_names_every_module() -> None:
    text = ARCHITECTURE.read_text()
    for name, path in MODULES.items():
        if path.name == "__init__.py" or name == "twilio_events.__main__":
            continue
        assert path.name in text, f"ARCHITECTURE.md does not mention {path.relative_to(PACKAGE)}"
