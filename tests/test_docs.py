from __future__ import annotations

import re

import click

from annotate.cli import cli

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix}{name} "))
    return found


def _mentioned(word: str) -> bool:
    """``word`` in the README as a whole token (``-o`` is not found inside ``--output``)."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", README) is not None


def test_every_command_has_help_and_a_row_in_a_readme_table() -> None:
    for name, command in _commands(cli):
        assert command.help, f"{name} has no help"
        assert re.search(rf"^\| `{re.escape(name)}[ `]", README, flags=re.MULTILINE), f"'{name}' has no row in a command table of README.md"
        if not isinstance(command, click.Group):
            assert "Example" in command.help, f"{name} help has no example"


def test_every_option_and_environment_variable_is_in_the_readme() -> None:
    for name, command in _commands(cli):
        for option in (p for p in command.params if isinstance(p, click.Option)):
            assert any(_mentioned(flag) for flag in option.opts), f"'{name}' option {'/'.join(option.opts)} is not in README.md"
            if option.envvar:
                assert _mentioned(str(option.envvar)), f"'{name}' reads {option.envvar}, which README.md does not name"
