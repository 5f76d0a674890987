"""Baseline: durable-rules on its own. Every event is asserted and retracted against a
ruleset compiled from the example rules' clauses (each rule must see each event); no
scoring, state or timers."""

from __future__ import annotations

import sys
from pathlib import Path

from leadrules.engine.core.turn import Compiled
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.sources import EventFile, ordered


def main(paths: list[str], rules_dir: str = "rules") -> int:
    rules, _ = load_rules(Path(rules_dir), Path("config"), references="warn")
    matcher = Compiled.build(rules, "durable").matcher
    fired = 0
    for _, _, _, event in ordered([EventFile(p) for p in paths], lambda r: None, full_sort=False):
        fired += len(matcher.match(event, {}))
    print(fired)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
