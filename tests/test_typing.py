"""Type checking as users do it: mypy --strict, configured as the README says, on the README's Python
examples and examples/, on handlers it must accept (tests/typing/accepted.py) and refuse (refused.py)."""

from __future__ import annotations

import ast
import builtins
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import twilio_events
from twilio_events import TwilioEvents
from twilio_events.channels import _StatusDecorator, _WebhookDecorator

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CASES = Path(__file__).resolve().parent / "typing"
EXAMPLES = ROOT / "examples"

PRELUDE = {
    "os": ["import os"],
    "app": ["from twilio_events import TwilioEvents", "app = TwilioEvents()"],
    **{name: [f"from twilio_events import {name}"] for name in twilio_events.__all__},
}
"""A name a README example uses without defining it (it continues an earlier one) -> the lines defining it."""


@dataclass(frozen=True)
class Example:
    """One ```python block of the README, and the line of the README it starts on."""

    source: str
    line: int


def readme_blocks(language: str) -> list[Example]:
    """Every ```<language> block of the README, in order."""
    text = README.read_text()
    pattern = re.compile(rf"^```{language}\n(.*?)^```", re.DOTALL | re.MULTILINE)
    return [Example(m.group(1), text.count("\n", 0, m.start(1)) + 1) for m in pattern.finditer(text)]


def free_names(source: str) -> set[str]:
    """The names `source` reads but never binds (imports, assignments, definitions, parameters)."""
    bound: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read - bound - set(dir(builtins))


def with_prelude(example: Example) -> tuple[str, int]:
    """The example as a module of its own, and how many prelude lines come before it."""
    missing = free_names(example.source) - PRELUDE.keys()
    assert not missing, f"README.md:{example.line}: add {sorted(missing)} to PRELUDE in {__file__}"
    lines = list(dict.fromkeys(line for name in sorted(free_names(example.source)) for line in PRELUDE[name]))
    return "\n".join([*lines, example.source]), len(lines)


def every_decorator() -> tuple[str, set[int]]:
    """A module using every decorator of every channel with a handler of its event, which mypy must accept,
    and with one returning an int, which it must refuse: (the module, the lines of those refusals)."""
    lines = ["from twilio_events import TwilioEvents", "from twilio_events.events import *"]
    lines.append("app = TwilioEvents()")
    refused: set[int] = set()
    for name, channel in TwilioEvents(auth_token="t").channels.items():
        event = channel.event_type.__name__
        decorators = [
            attribute
            for attribute, value in vars(type(channel)).items()
            if isinstance(value, _StatusDecorator | _WebhookDecorator)
        ]
        for index, attribute in enumerate([*decorators, "on_any"]):
            lines += [f"@app.{name}.{attribute}", f"def {name}_{index}(event: {event}) -> None: ..."]
            refused.add(len(lines) + 1)
            lines += [f"@app.{name}.{attribute}", f"def {name}_{index}_int(event: {event}) -> int: return 1"]
    return "\n".join(lines) + "\n", refused


OUTPUT = ["--no-pretty", "--show-error-codes", "--no-error-summary"]
"""One error per line, whatever the configuration says about output."""


@dataclass(frozen=True)
class Error:
    """One error mypy reported, in the file of that name (mypy may name the folder of an earlier run: the
    file's own name is what identifies it, and its cached errors are those of the same content)."""

    file: str
    line: int
    code: str
    message: str


Checked = tuple[dict[str, tuple[Example, int]], list[Error]]
"""Each README example's file -> (the example, the lines of prelude before it), and mypy's errors."""


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """Run mypy once, with the README's configuration, on every example and case: (examples, errors)."""
    folder = tmp_path_factory.mktemp("typing")
    [config] = [block.source for block in readme_blocks("toml") if "[tool.mypy]" in block.source]
    config_file = folder / "pyproject.toml"
    config_file.write_text(config)
    examples: dict[str, tuple[Example, int]] = {}
    for index, example in enumerate(readme_blocks("python")):
        path = folder / f"readme_example_{index:02}.py"
        source, offset = with_prelude(example)
        path.write_text(source)
        examples[path.name] = (example, offset)
    (folder / "every_decorator.py").write_text(every_decorator()[0])
    files = [*(folder / name for name in examples), folder / "every_decorator.py", *CASES.glob("*.py")]
    files += EXAMPLES.glob("*.py")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config_file), *OUTPUT, *map(str, files)],
        cwd=ROOT,  # the package under test, not another installed copy
        capture_output=True,
        text=True,
        check=False,
    )
    pattern = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*?)  \[(?P<code>[a-z-]+)\]$")
    errors = [
        Error(Path(m["path"]).name, int(m["line"]), m["code"], m["message"])
        for m in map(pattern.match, result.stdout.splitlines())
        if m
    ]
    assert result.returncode in (0, 1) and (errors or result.returncode == 0), result.stdout + result.stderr
    names = {file.name for file in files}
    assert [error for error in errors if error.file not in names] == []  # none in the package itself
    return examples, errors


def test_every_python_example_of_the_readme_type_checks(
    checked: Checked,
) -> None:
    examples, errors = checked
    assert len(examples) >= 15
    found = [
        f"README.md:{examples[e.file][0].line + e.line - 1 - examples[e.file][1]}: {e.message} [{e.code}]"
        for e in errors
        if e.file in examples
    ]
    assert found == []


def test_the_example_services_type_check(checked: Checked) -> None:
    _, errors = checked
    names = {path.name for path in EXAMPLES.glob("*.py")}
    assert len(names) >= 5
    assert [e for e in errors if e.file in names] == []


def test_every_decorator_of_every_channel_is_typed(
    checked: Checked,
) -> None:
    _, errors = checked
    _, refused = every_decorator()
    assert len(refused) > 60
    assert {(e.line, e.code) for e in errors if e.file == "every_decorator.py"} == {
        (line, "type-var") for line in refused
    }


def test_handlers_of_the_right_event_and_result_are_accepted_and_keep_their_type(
    checked: Checked,
) -> None:
    _, errors = checked
    assert [e for e in errors if e.file == "accepted.py"] == []


def test_handlers_of_another_event_or_result_are_refused_where_marked(
    checked: Checked,
) -> None:
    _, errors = checked
    lines = (CASES / "refused.py").read_text().splitlines()
    expected = {
        (number, marker.group(1))
        for number, line in enumerate(lines, 1)
        if (marker := re.search(r"# error: ([a-z-]+)$", line))
    }
    assert len(expected) >= 9
    assert {(e.line, e.code) for e in errors if e.file == "refused.py"} == expected
