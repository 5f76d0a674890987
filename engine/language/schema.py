"""A JSON Schema of rule files, for editors (yaml-language-server)."""

from __future__ import annotations

from typing import Any

from leadrules.engine.language.rule_files import RuleFile
from leadrules.engine.language.test_files import RuleTestFile


def json_schema() -> dict[str, Any]:
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "leadrules rule file"
    schema["description"] = (
        "scoring, lifecycle, triggers, sequences and accounts (rule language version 1)"
    )
    # Rule tests (rules/tests/*.yaml) have their own shape: `$defs.RuleTestFile`, for an
    # editor's `# yaml-language-server: $schema=...#/$defs/RuleTestFile`.
    tests = RuleTestFile.model_json_schema()
    defs = schema.setdefault("$defs", {})
    defs.update(tests.pop("$defs", {}))
    defs["RuleTestFile"] = tests
    return schema
