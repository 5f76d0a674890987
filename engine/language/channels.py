"""`config/channels.yaml`: where messages go, each channel checked by its adapter's settings
model. `${ENV_VAR}` strings are kept as written and resolved only when something is sent
(`leadrules.engine.envrefs`), so a replay needs no secret."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from leadrules.engine.core.ruleset import Channel, Pos
from leadrules.engine.errors import Problem
from leadrules.engine.language.clauses import did_you_mean
from leadrules.engine.language.send_window_config import send_cap, send_window
from leadrules.engine.language.stage_changes import stage_subscription
from leadrules.engine.language.validation import validation_problems
from leadrules.engine.language.yaml_source import load as load_yaml


def shown_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def load_channels(config_dir: Path | None) -> tuple[dict[str, Channel], list[Problem]]:
    """`config/channels.yaml` -> channels, each validated by its adapter's settings model.
    No directory or no file: no channels."""
    channels, problems, _ = declared_channels(config_dir)
    return channels, problems


def declared_channels(
    config_dir: Path | None,
) -> tuple[dict[str, Channel], list[Problem], set[str] | None]:
    """`load_channels`, plus the names the file declares, valid or not (None when the file
    cannot be read as channels at all): a rule naming a declared but invalid channel is not
    also an "unknown channel", since the channel's own problem already says what is wrong."""
    from leadrules.adapters.registry import adapter_class, adapter_names

    if config_dir is None:
        return {}, [], set()
    path = Path(config_dir) / "channels.yaml"
    if not path.is_file():
        return {}, [], set()
    src, problems = load_yaml(path, shown_path(path))
    if problems:
        return {}, problems, None
    data = src.data or {}
    if not isinstance(data, dict) or set(data) - {"channels"}:
        extra = sorted(set(data) - {"channels"}, key=str) if isinstance(data, dict) else []
        where = ("channels" if not extra else extra[0],)
        message = f"unknown key {extra[0]!r}" if extra else "channels.yaml holds `channels:`"
        return {}, [src.at(where, message, key=bool(extra))], None
    declared = data.get("channels") or {}
    if not isinstance(declared, dict):
        return {}, [src.at(("channels",), "channels: a mapping of name to channel")], None
    channels: dict[str, Channel] = {}
    for name, spec in declared.items():
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
        if not isinstance(adapter, str) or adapter not in adapter_names():
            problems.append(
                src.at(
                    (*here, "adapter"),
                    f"unknown adapter {adapter!r}{did_you_mean(str(adapter), adapter_names())}",
                )
            )
            continue
        own = ("adapter", "stage_changes", "send_window", "send_cap")  # leadrules' own keys
        settings = {k: v for k, v in spec.items() if k not in own}
        subscription = stage_subscription(src, here, spec.get("stage_changes"), problems)
        window = send_window(src, here, spec.get("send_window"), problems)
        cap = send_cap(src, here, spec.get("send_cap"), problems)
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
        channels[name] = Channel(
            str(name), adapter, settings, Pos(src.path, line, col), *subscription, window, cap
        )
    return channels, problems, {str(name) for name in declared}
