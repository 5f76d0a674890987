"""Baseline: read, parse, validate and order a file, and do nothing else (the IO floor)."""

from __future__ import annotations

import sys

from leadrules.engine.replay.sources import EventFile, ordered


def main(paths: list[str]) -> int:
    count = sum(1 for _ in ordered([EventFile(p) for p in paths], lambda r: None, full_sort=False))
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
