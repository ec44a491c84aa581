"""The README's commands are real: every `aitbc` command line in it parses, every `make` target exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from aitbc.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SHELL_BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.DOTALL)


def _command_lines(program: str) -> list[str]:
    lines = []
    for block in SHELL_BLOCKS:
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("#", 1)[0].strip()
            if command.startswith((f"{program} ", f".venv/bin/{program} ")):
                lines.append(command)
    return lines


AITBC_LINES = _command_lines("aitbc")


def test_the_readme_shows_aitbc_commands() -> None:
    assert len(AITBC_LINES) > 10


@pytest.mark.parametrize("line", AITBC_LINES)
def test_every_aitbc_command_in_the_readme_parses(line: str) -> None:
    argv = shlex.split(line)[1:]
    build_parser().parse_args(argv)  # a usage error would exit 2


def test_every_make_target_in_the_readme_exists() -> None:
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    for line in _command_lines("make"):
        target = shlex.split(line)[1]
        assert target in targets, line


def test_the_readme_says_where_the_commands_are() -> None:
    assert "source .venv/bin/activate" in README
    assert "/health" in README
    assert 'make run ARGS="--listen' in README
