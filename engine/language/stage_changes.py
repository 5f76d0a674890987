"""`stage_changes:` on a channel in `config/channels.yaml`: the CRM is told of every stage
change (`set_stage`) by a `notify` through that channel, without a rule per stage.

```yaml
channels:
  crm: {adapter: webhook, url: "...", stage_changes: {template: crm-stage, stages: [mql, sal]}}
```
The notify records carry the stage change's rule (`lifecycle.STAGE`), right after its
`set_stage` record; a channel without the key is told nothing (the records stay as before).
"""

from __future__ import annotations

from typing import Any

from leadrules.engine.core.ruleset import STAGES
from leadrules.engine.errors import Problem
from leadrules.engine.language.clauses import did_you_mean
from leadrules.engine.language.yaml_source import Source


def stage_subscription(
    src: Source, here: tuple[Any, ...], value: Any, problems: list[Problem]
) -> tuple[str | None, tuple[str, ...]]:
    """`stage_changes: {template: T, stages: [...]}` -> (template, stages); (None, ()) when
    the channel has no such key or it is invalid (each problem positioned)."""
    if value is None:
        return None, ()
    where = (*here, "stage_changes")
    if not isinstance(value, dict):
        problems.append(src.at(where, "stage_changes: a mapping with template (and stages)"))
        return None, ()
    for key in value:
        if key not in ("template", "stages"):
            hint = did_you_mean(str(key), ["template", "stages"])
            problems.append(src.at((*where, key), f"unknown key {key!r}{hint}", key=True))
    template = value.get("template")
    if not isinstance(template, str) or not template:
        problems.append(src.at(where, "stage_changes: needs template (a template name)"))
        return None, ()
    stages = value.get("stages", [])
    if not isinstance(stages, list):
        problems.append(src.at((*where, "stages"), "stages: a list of stages"))
        return None, ()
    for index, stage in enumerate(stages):
        if stage not in STAGES:
            problems.append(
                src.at(
                    (*where, "stages", index),
                    f"unknown stage {stage!r}{did_you_mean(str(stage), STAGES)}; "
                    f"stages are {', '.join(STAGES)}",
                )
            )
    return template, tuple(str(s) for s in stages)
