"""A command group with a default command, so one word can be both a group and a
command: `protomesh search reindex` runs the `reindex` subcommand while
`protomesh search "some text" --mode vector` runs the default `query` command.

The click-default-group pattern, reduced to `parse_args`: when the group's first
argument is neither a subcommand nor one of the group's own options (`--help`),
the default command's name is put in front of the arguments and normal command
resolution takes over. So options may come before the text too
(`protomesh search --mode vector "text"`), and text that happens to equal a
subcommand's name is searched by naming the default command
(`protomesh search query reindex`).
"""

from __future__ import annotations

from typing import ClassVar

from typer import _click as click  # typer vendors click; its Context lives here
from typer.core import TyperGroup


class DefaultCommandGroup(TyperGroup):
    """Subclass and set `default_command` to the name of one of the group's commands."""

    default_command: ClassVar[str] = ""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and self.default_command and not self._addresses_group(ctx, args[0]):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def _addresses_group(self, ctx: click.Context, first: str) -> bool:
        """Whether `first` is meant for the group itself: a subcommand or its own option."""
        if first in self.commands:
            return True
        params = self.get_params(ctx)
        own = {opt for param in params for opt in (*param.opts, *param.secondary_opts)}
        return first.partition("=")[0] in own
