"""`policy-assistant keys …` (API keys for other systems) and `policy-assistant mcp` (the MCP tools over stdio)."""

from __future__ import annotations

import getpass
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from assistant.channels.keys import KeyStore
from assistant.cli_help import SUBCOMMAND_METAVAR, Command, Group, examples
from assistant.config import Settings

keys = typer.Typer(cls=Group, no_args_is_help=True, subcommand_metavar=SUBCOMMAND_METAVAR,
                   help="API 密钥：其他系统调用 /api/v1、/v1（OpenAI 兼容）和 /mcp 时使用。",
                   epilog=examples("policy-assistant keys create --scope ask --name hotline",
                                   "policy-assistant keys list"))
Name = Annotated[str, typer.Option("--name", metavar="名称", help="密钥名称（日志中以此代替密钥）。")]


def _store() -> KeyStore:
    settings = Settings()
    return KeyStore(Path(settings.state_dir), settings.api.keys)


@keys.command("create", cls=Command, epilog=examples("policy-assistant keys create --name portal --scope ask",
                                                      "policy-assistant keys create --name cms --scope publish"))
def keys_create(
    name: Annotated[str, typer.Option("--name", metavar="名称", help="密钥名称（日志中以此代替密钥；默认自动生成）。",
                                      show_default=False)] = "",
    scope: Annotated[str, typer.Option("--scope", metavar="范围",
                                       help="ask：提问、检索；publish：另可发布文件。")] = "ask",
    rate: Annotated[int | None, typer.Option("--rate", metavar="次数", min=1,
                                             help="每分钟最多请求数（默认按设置）。")] = None,
) -> None:
    """新建一个密钥。密钥只显示这一次，服务器只保存它的 SHA-256；运行中的服务立即可用。"""
    key, record = _store().create(name or f"key-{secrets.token_hex(3)}", scope, rate)
    typer.echo(key)
    typer.echo(f"已新建密钥“{record.name}”（范围 {record.scope}），只显示这一次，请妥善保存。\n"
               f"调用时发送请求头：Authorization: Bearer <密钥>", err=True)


@keys.command("list", cls=Command, epilog=examples("policy-assistant keys list"))
def keys_list() -> None:
    """所有密钥：名称、范围、每分钟限额、来源（不显示密钥本身）。"""
    default = Settings().api.rate_limit_per_minute
    listed = _store().list()
    for record, origin in listed:
        typer.echo(f"{record.name}\t{record.scope}\t{record.rate_limit_per_minute or default}/分钟\t"
                   f"{'配置项 POLICY_ASSISTANT_API__KEYS' if origin == 'settings' else '新建于 ' + origin}")
    typer.echo(f"共 {len(listed)} 个密钥", err=True)


@keys.command("revoke", cls=Command, epilog=examples("policy-assistant keys revoke --name portal"))
def keys_revoke(name: Name) -> None:
    """作废一个用 keys create 新建的密钥（运行中的服务立即拒绝它）。"""
    if not _store().revoke(name):
        typer.echo(f"没有名为“{name}”的新建密钥（配置项中的密钥请从 POLICY_ASSISTANT_API__KEYS 中删去）。", err=True)
        raise typer.Exit(1)
    typer.echo(f"已作废密钥“{name}”。", err=True)


@keys.command("hash", cls=Command, epilog=examples("policy-assistant keys hash"))
def keys_hash() -> None:
    """读入一个密钥（不回显），输出它的 SHA-256，供写入 POLICY_ASSISTANT_API__KEYS。"""
    from assistant.channels.keys import digest

    key = getpass.getpass("密钥：") if sys.stdin.isatty() else sys.stdin.readline()
    typer.echo(digest(key.strip()))


def mcp(index_dir: Annotated[Path | None, typer.Option("--index-dir", metavar="目录", help="索引目录。")] = None
        ) -> None:
    """以 MCP（stdio）向 AI 助手提供政策问答工具。

    工具：ask_policy（问答）、search_clauses（检索条款）、get_document（查看文件）。在 MCP 客户端中配置命令
    policy-assistant mcp 即可；HTTP 方式见 serve 的 /mcp（需 API 密钥）。
    """
    from assistant.channels.api_support import Answering
    from assistant.channels.mcp import build_mcp
    from assistant.service import Assistant

    settings = Settings()
    if index_dir is not None:
        settings.index_dir = index_dir
    assistant = Assistant(settings)
    assistant.retriever  # noqa: B018 (an index that is missing is said now, not at the first call)
    build_mcp(assistant, Answering(assistant, settings.api)).run("stdio")

