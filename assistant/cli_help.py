"""`policy-assistant --help` in Chinese: Typer's panel titles, usage line and --help option, no type placeholders."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

# Typer's fixed strings (typer.rich_utils), as the rest of the help speaks
PANEL_STRINGS = {
    "ARGUMENTS_PANEL_TITLE": "参数",
    "OPTIONS_PANEL_TITLE": "选项",
    "COMMANDS_PANEL_TITLE": "命令",
    "DEFAULT_STRING": "[默认：{}]",
    "REQUIRED_LONG_STRING": "[必填]",
    "ENVVAR_STRING": "[环境变量：{}]",
    "DEPRECATED_STRING": "（已弃用）",
}
USAGE = "用法："
OPTIONS_METAVAR = "[选项]"
SUBCOMMAND_METAVAR = "命令 [参数]..."
HELP_TEXT = "显示本帮助并退出。"


def examples(*commands: str) -> str:
    """An epilog that shows how a command is called, one command line a paragraph."""
    return "示例：\n\n" + "\n\n".join(f"  {command}" for command in commands)


def _localise_panels() -> None:
    try:
        from typer import rich_utils
    except ImportError:  # without rich, Typer prints Click's plain help, which has no such panels
        return
    for name, text in PANEL_STRINGS.items():
        if hasattr(rich_utils, name):
            setattr(rich_utils, name, text)


def _no_type(ctx: Any) -> None:
    return None


def _plain_params(params: list[Any]) -> None:
    """A flag takes no value, so Typer's `<bool>` after it misleads; an argument is named by its metavar, so
    `<str>` after it adds nothing."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif getattr(param, "param_type_name", "") == "argument" and hasattr(param, "display_type_rich"):
            param.display_type_rich = _no_type


class _Chinese:
    """Mixed into Typer's command and group classes."""

    params: list[Any]
    options_metavar: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options_metavar = OPTIONS_METAVAR
        _plain_params(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = HELP_TEXT
            _plain_params([option])
        return option

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        pieces = self.collect_usage_pieces(ctx)  # type: ignore[attr-defined]
        formatter.write_usage(ctx.command_path, " ".join(pieces), prefix=USAGE)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _localise_panels()
        super().format_help(ctx, formatter)  # type: ignore[misc]


class Command(_Chinese, TyperCommand):
    """A command whose help is all in Chinese."""


class Group(_Chinese, TyperGroup):
    """A group whose help is all in Chinese."""


def show_usage_error(e: Any) -> None:
    """A usage error (unknown option, missing argument …) on stderr: the usage line, the error, where the help is."""
    ctx = getattr(e, "ctx", None)
    if ctx is None or type(e).__name__ == "NoArgsIsHelpError":  # its message is the help itself
        e.show()
        return
    typer.echo(f"{ctx.get_usage()}\n错误：{e.format_message()}\n帮助：{ctx.command_path} --help", err=True)
