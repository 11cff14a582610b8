from __future__ import annotations

import click

from annotate.cli import cli

from .conftest import ROOT


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix}{name} "))
    return found


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, command in _commands(cli):
        assert command.help, f"{name} has no help"
        assert f"{name}" in readme, f"'{name}' is not documented in README.md"
        if not isinstance(command, click.Group):
            assert "Example" in command.help, f"{name} help has no example"
