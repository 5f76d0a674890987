"""Deployment settings under `config/`: channels (where messages go) and daemon settings.

`${ENV_VAR}` strings are kept as written; they are resolved only when something is sent
(channels) or when the daemon starts (write keys), so a replay needs no secret.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.clauses import did_you_mean
from engine.errors import ConfigError, Problem
from engine.ruleset import Channel, Pos
from engine.validation import validation_problems
from engine.yamlsrc import load as load_yaml

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def load_channels(config_dir: Path | None) -> tuple[dict[str, Channel], list[Problem]]:
    """`config/channels.yaml` -> channels, each validated by its adapter's settings model.
    No directory or no file: no channels."""
    from adapters.registry import adapter_class, adapter_names

    if config_dir is None:
        return {}, []
    path = Path(config_dir) / "channels.yaml"
    if not path.is_file():
        return {}, []
    src, problems = load_yaml(path, _shown(path))
    if problems:
        return {}, problems
    data = src.data or {}
    if not isinstance(data, dict) or set(data) - {"channels"}:
        extra = sorted(set(data) - {"channels"}) if isinstance(data, dict) else []
        where = ("channels" if not extra else extra[0],)
        message = f"unknown key {extra[0]!r}" if extra else "channels.yaml holds `channels:`"
        return {}, [src.at(where, message, key=bool(extra))]
    channels: dict[str, Channel] = {}
    for name, spec in (data.get("channels") or {}).items():
        here = ("channels", name)
        line, col = src.keys.get(here, (1, 1))
        if not isinstance(spec, dict):
            problems.append(src.at(here, f"channel {name!r} must be a mapping with `adapter`"))
            continue
        adapter = spec.get("adapter")
        if adapter is None:
            problems.append(
                src.at(
                    here, f"channel {name!r} needs `adapter` (one of {', '.join(adapter_names())})"
                )
            )
            continue
        if adapter not in adapter_names():
            problems.append(
                src.at(
                    (*here, "adapter"),
                    f"unknown adapter {adapter!r}{did_you_mean(adapter, adapter_names())}",
                )
            )
            continue
        settings = {k: v for k, v in spec.items() if k != "adapter"}
        try:
            model = adapter_class(adapter).settings_model
        except Exception as exc:  # a plug-in that fails to import is a config problem
            problems.append(
                src.at((*here, "adapter"), f"adapter {adapter!r} cannot be loaded: {exc}")
            )
            continue
        try:
            model.model_validate(settings)
        except ValidationError as exc:
            problems += validation_problems(src, exc, model=model, prefix=here, noun="setting")
            continue
        channels[name] = Channel(name, adapter, settings, Pos(src.path, line, col))
    return channels, problems


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = 8080
    write_keys: list[str] = Field(default_factory=lambda: ["${LEADRULES_WRITE_KEY}"])
    max_message_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024


class DispatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_attempts: int = 8
    backoff_base: str = "2s"
    backoff_max: str = "10m"


class Settings(BaseModel):
    """`config/leadrules.yaml`: every key optional."""

    model_config = ConfigDict(extra="forbid")
    database_url: str = "sqlite:///var/leadrules.db"
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)

    def resolved_write_keys(self) -> list[str]:
        """Write keys with `${VAR}` read from the environment; unset variables give none."""
        keys = []
        for key in self.ingest.write_keys:
            names = _ENV.findall(key)
            if any(n not in os.environ or not os.environ[n] for n in names):
                continue
            value = _ENV.sub(lambda m: os.environ[m.group(1)], key)
            if value:
                keys.append(value)
        return keys


def load_settings(config_dir: Path | None) -> Settings:
    """`config/leadrules.yaml` -> Settings (defaults when absent). Raises ConfigError."""

    if config_dir is None:
        return Settings()
    path = Path(config_dir) / "leadrules.yaml"
    if not path.is_file():
        return Settings()
    src, problems = load_yaml(path, _shown(path))
    if problems:
        raise ConfigError(problems)
    try:
        return Settings.model_validate(src.data or {})
    except ValidationError as exc:
        raise ConfigError(validation_problems(src, exc, model=Settings, noun="setting")) from None
