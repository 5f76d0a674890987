"""Rule files -> `RuleSet`, with every problem reported as `path:line:col: message`.

All `*.yaml`/`*.yml` files under the rules directory (recursively, except `templates/`) are
read in path order, validated (leadrules.engine.language.rule_files), compiled (leadrules.engine.language.compile) and merged; then
cross-references — channels, templates, sequences — are checked. All problems are collected
and reported at once. `check` is what `leadrules check` runs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from leadrules.engine.core.ruleset import (
    AccountRules,
    Lifecycle,
    RuleSet,
    ScoringRule,
    Sequence,
    Trigger,
)
from leadrules.engine.errors import Problem, RuleError
from leadrules.engine.language.channels import declared_channels
from leadrules.engine.language.clauses import did_you_mean
from leadrules.engine.language.compile import FileRules, compile_file
from leadrules.engine.language.config_files import config_problems
from leadrules.engine.language.templates import TemplateSet
from leadrules.engine.language.test_files import rule_test_problems
from leadrules.engine.language.yaml_source import load as load_yaml


def _shown(path: Path) -> str:
    """Paths in messages as the user would type them: relative to the working directory."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def rule_files(rules_dir: Path) -> list[Path]:
    # rules/tests/ holds rule tests (language.test_files), never rules.
    skipped = (rules_dir / "templates", rules_dir / "tests")
    found = [p for p in rules_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    return sorted(p for p in found if not any(d in p.parents for d in skipped))


@dataclass
class _Merged:
    files: list[FileRules] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def load_rules(
    rules_dir: Path, config_dir: Path | None, *, references: Literal["error", "warn"] = "error"
) -> tuple[RuleSet, list[Problem]]:
    """Load, validate and compile the rules. Raises RuleError with every problem found;
    returns the rule set and the warnings (unknown channels and templates with `warn`)."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise RuleError([Problem(_shown(rules_dir), 1, 1, "no such rules directory")])
    compiled: list[FileRules] = []
    digest = hashlib.sha256()
    for path in rule_files(rules_dir):
        shown = _shown(path)
        try:
            raw = path.read_bytes()
        except OSError:  # load_yaml reports it, at the file
            raw = b""
        digest.update(shown.encode() + b"\0" + raw + b"\0")
        src, file_problems = load_yaml(path, shown)
        problems += file_problems
        if file_problems:
            continue
        data = src.data if src.data is not None else {}
        if not isinstance(data, dict):
            problems.append(
                src.at(
                    (),
                    "a rule file is a mapping of scoring, lifecycle, triggers, sequences, accounts",
                )
            )
            continue
        rules, found = compile_file(src)
        problems += found
        compiled.append(rules)

    channels, channel_problems, declared = declared_channels(config_dir)
    problems += channel_problems
    if config_dir is not None:
        for name in ("channels.yaml", "leadrules.yaml"):
            path = Path(config_dir) / name
            if path.is_file():
                digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    templates = TemplateSet(rules_dir / "templates")
    problems += templates.problems()
    for channel in channels.values():  # stage_changes: {template: T} (language.stage_changes)
        if channel.stage_template is not None and channel.stage_template not in templates.names():
            hint = did_you_mean(channel.stage_template, templates.names())
            where = channel.pos
            message = f"stage_changes: unknown template {channel.stage_template!r}{hint}"
            problems.append(Problem(where.path, where.line, where.col, message))

    ruleset, merge_problems, refs = _merge(compiled, channels, templates, declared)
    problems += merge_problems
    for ref in refs:
        if references == "warn" and ref[0] in ("channel", "template"):
            warnings.append(ref[1])
        else:
            problems.append(ref[1])
    if problems:
        raise RuleError(problems)
    return RuleSet(**{**ruleset, "version": digest.hexdigest()[:12]}), sorted(warnings)


def check(rules_dir: Path, config_dir: Path | None) -> list[Problem]:
    """Every problem in the rules, their references and the whole of `config/` (empty:
    valid): what `run` would refuse, `check` reports first."""
    problems: list[Problem] = []
    try:
        load_rules(rules_dir, config_dir)
    except RuleError as exc:
        problems += exc.problems
    if config_dir is not None:
        problems += config_problems(Path(config_dir))
    problems += rule_test_problems(Path(rules_dir))
    return sorted(problems)


def _merge(
    files: list[FileRules],
    channels: dict[str, Any],
    templates: TemplateSet,
    declared: set[str] | None,
) -> tuple[dict[str, Any], list[Problem], list[tuple[str, Problem]]]:
    """Merge the files; `declared` are the channel names config declares, valid or not
    (None: channels.yaml is unreadable, and channel references go unchecked)."""
    problems: list[Problem] = []
    ids: dict[str, str] = {}
    scoring: list[ScoringRule] = []
    triggers: list[Trigger] = []
    sequences: dict[str, Sequence] = {}
    lifecycle: Lifecycle | None = None
    lifecycle_at = ""
    accounts: AccountRules | None = None
    for rules in files:
        for rule_id, where in rules.ids:
            if rule_id in ids:
                problems.append(
                    Problem(
                        where.path,
                        where.line,
                        where.col,
                        f"duplicate id {rule_id!r} (first defined at {ids[rule_id]})",
                    )
                )
            else:
                ids[rule_id] = str(where)
        scoring += rules.scoring
        triggers += rules.triggers
        for name, seq in rules.sequences.items():
            if name in sequences:
                problems.append(
                    Problem(
                        seq.pos.path,
                        seq.pos.line,
                        seq.pos.col,
                        f"duplicate sequence {name!r} (first defined at {sequences[name].pos})",
                    )
                )
            else:
                sequences[name] = seq
        if rules.lifecycle is not None:
            if lifecycle is not None:
                where = rules.lifecycle_pos
                problems.append(
                    Problem(
                        where.path,
                        where.line,
                        where.col,
                        f"lifecycle is already defined at {lifecycle_at}",
                    )
                )
            else:
                lifecycle, lifecycle_at = rules.lifecycle, str(rules.lifecycle_pos)
        if rules.accounts is not None:
            if accounts is not None:
                where = rules.accounts.pos
                problems.append(
                    Problem(
                        where.path,
                        where.line,
                        where.col,
                        f"accounts is already defined at {accounts.pos}",
                    )
                )
            else:
                accounts = rules.accounts
    if accounts is None and any(t.scope == "account" for t in triggers):
        accounts = AccountRules()  # account triggers alone: accounts with the defaults
    refs: list[tuple[str, Problem]] = []
    known: dict[str, Any] = {
        "channel": channels if declared is None else declared | set(channels),
        "template": templates.names(),
        "sequence": sequences,
    }
    for rules in files:
        for kind, name, where in rules.references:
            if kind == "channel" and declared is None:
                continue
            if name not in known[kind]:
                message = f"unknown {kind} {name!r}{did_you_mean(name, known[kind])}"
                refs.append((kind, Problem(where.path, where.line, where.col, message)))
    merged = {
        "scoring": tuple(scoring),
        "triggers": tuple(triggers),
        "sequences": sequences,
        "lifecycle": lifecycle or Lifecycle(),
        "templates": templates.paths(),
        "channels": channels,
        "accounts": accounts,
    }
    return merged, problems, refs
