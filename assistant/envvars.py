"""The environment variables `Settings` reads: name, effective value (secrets masked), default, description."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings

MASK = "********"


@dataclass
class EnvVar:
    name: str  # e.g. POLICY_ASSISTANT_LIMITS__MAX_QUESTION_CHARS
    value: str  # as it would be written in the environment; a secret that is set is masked
    default: str
    description: str
    group: str = ""  # the nested group's name ("" for top-level settings)


def env_vars(settings: BaseSettings) -> list[EnvVar]:
    """Every setting of `settings`, nested groups flattened with the env_nested_delimiter, in declaration order."""
    config = settings.model_config
    prefix = str(config.get("env_prefix", "")).upper()
    delimiter = str(config.get("env_nested_delimiter") or "__")
    found: list[EnvVar] = []
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            default = info.get_default(call_default_factory=True)
            for field, sub in type(value).model_fields.items():
                found.append(EnvVar(f"{prefix}{name}{delimiter}{field}".upper(), shown(getattr(value, field)),
                                    shown(getattr(default, field)), sub.description or "", name))
        else:
            found.append(EnvVar(f"{prefix}{name}".upper(), shown(value),
                                shown(info.get_default(call_default_factory=True)), info.description or ""))
    return found


def shown(value: Any) -> str:
    """A value as the environment would give it: strings quoted (so that an empty one is seen), lists as JSON,
    booleans as true/false; a secret that is set as a mask."""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def group_descriptions(settings: BaseSettings) -> dict[str, str]:
    """Each nested group's name → the first line of its class docstring."""
    return {name: (type(value).__doc__ or "").strip().splitlines()[0]
            for name in type(settings).model_fields if isinstance(value := getattr(settings, name), BaseModel)}


def listing(settings: BaseSettings) -> str:
    """Every setting as `NAME=value  (default: …)` and its description below, grouped as `Settings` nests them."""
    lines = ["# Settings: environment variable=effective value (default), then what it does; secrets masked."]
    groups = group_descriptions(settings)
    group = ""
    for var in env_vars(settings):
        if var.group != group:
            group = var.group
            lines.append(f"\n# {group}: {groups.get(group, '')}")
        lines.append(f"{var.name}={var.value}  (default: {var.default})")
        lines.append(textwrap.fill(var.description, width=100, initial_indent="    ", subsequent_indent="    ",
                                   break_on_hyphens=False))
    return "\n".join(lines)
