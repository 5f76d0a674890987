"""The whole of `config/` at `leadrules check`: what `run` reads there, checked before it runs.

`channels.yaml` is checked with the rules (their references need it); this adds
`leadrules.yaml` (the daemon's settings: a typo there would pass `check` and stop `run`) and
YAML files whose name is close to one of those two, which the daemon would silently ignore.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from leadrules.engine.errors import Problem, RuleError
from leadrules.engine.language.channels import shown_path
from leadrules.engine.language.settings import load_settings

CONFIG_FILES = ("channels.yaml", "leadrules.yaml")


def config_problems(config_dir: Path) -> list[Problem]:
    """Problems in `config/leadrules.yaml` and misnamed config files (channels.yaml aside)."""
    if not config_dir.is_dir():
        return []
    problems: list[Problem] = []
    try:
        load_settings(config_dir)
    except RuleError as exc:  # ConfigError
        problems += exc.problems
    for path in sorted(config_dir.iterdir()):
        if path.suffix in (".yaml", ".yml") and path.is_file() and path.name not in CONFIG_FILES:
            close = difflib.get_close_matches(path.name, CONFIG_FILES, n=1, cutoff=0.8)
            if close:
                message = f"unknown config file {path.name!r} (did you mean {close[0]!r}?)"
                problems.append(Problem(shown_path(path), 1, 1, message))
    return problems
