"""Generate N scoring rules and triggers over the generator's vocabulary, for the rule-count
benchmark: `python -m bench.rulegen 1000 bench/out/rules-1000`."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from bench.generate import PAGE_PATHS, TRACK_NAMES


def rules_yaml(count: int, seed: int = 1) -> str:
    """`count` rules, as a large playbook has them: each aimed at one page or event out of a
    vocabulary that grows with the rules (the site's own pages and events plus campaign pages
    and events), so most rules match few events, as they do in practice."""
    rng = random.Random(seed)
    pages = [*PAGE_PATHS, *(f"/campaign/{k}" for k in range(count))]
    events = [*TRACK_NAMES, *(f"Campaign {k} Clicked" for k in range(count))]
    scoring, triggers = [], []
    for i in range(count):
        kind = rng.random()
        if kind < 0.45:
            when = f'{{page: {{path: {{glob: "{rng.choice(pages)}*"}}}}}}'
        elif kind < 0.9:
            when = f'{{event: "{rng.choice(events)}"}}'
        else:
            when = f"{{event: Video Watched, where: {{category: {rng.choice(['case-study', 'webinar'])}}}}}"
        if i % 10 == 9:
            triggers.append(
                f"  - id: t{i}\n    when: {when[:-1]}, times: {rng.randint(2, 4)}, within: 7d}}\n"
                f"    cooldown: 7d\n    then:\n      - notify: {{channel: log, template: t}}\n"
            )
        else:
            scoring.append(
                f"    - id: s{i}\n      when: {when}\n      points: {rng.randint(-5, 20)}\n"
                f"      expires_after: {rng.choice(['7d', '30d', '90d'])}\n"
            )
    text = "scoring:\n  rules:\n" + "".join(scoring)
    if triggers:
        text += "triggers:\n" + "".join(triggers)
    return text + "lifecycle:\n  mql_threshold: 100\n"


def main(argv: list[str]) -> int:
    count, target = int(argv[0]), Path(argv[1])
    (target / "templates").mkdir(parents=True, exist_ok=True)
    (target / "templates" / "t.md").write_text("{{ prospect }}\n")
    (target / "rules.yaml").write_text(rules_yaml(count))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
