"""`leadrules replay` and `leadrules explain`: the rules over history, on simulated time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from leadrules.engine.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REJECTED,
    load,
    open_sources,
    open_store,
    output,
)


def cmd_replay(args: argparse.Namespace) -> int:
    from leadrules.engine.replay.dry_run import StrictStop, replay
    from leadrules.engine.replay.summary import Progress, print_summary

    rules = load(args)
    sources = open_sources(args.files)

    def on_reject(item: Any) -> None:
        print(f"rejected: {item}", file=sys.stderr)

    renderer = _renderer(args) if args.render else None
    try:
        workers = args.workers or (0 if args.cluster else _default_workers(sources))
        parallel = (args.cluster or workers > 1) and args.order == "timestamp"
        parallel = parallel and not args.strict and not renderer
        with (
            output(args.out) as out,
            Progress(sources, enabled=not args.quiet, passes=2 if parallel else 1) as progress,
        ):
            if parallel:
                from leadrules.engine.replay.workers import replay_workers

                result = replay_workers(
                    sources,
                    rules,
                    out,
                    workers=workers,
                    until=args.until,
                    matcher=args.matcher,
                    on_reject=on_reject,
                    on_bytes=progress.advance,
                    dedupe_window=args.dedupe_window,
                    cluster=args.cluster,
                )
            else:
                result = replay(
                    sources,
                    rules,
                    out,
                    options=None if renderer is None else renderer.options,
                    on_decisions=renderer,
                    until=args.until,
                    matcher=args.matcher,
                    strict=args.strict,
                    on_reject=on_reject,
                    on_bytes=progress.advance,
                    order=args.order,
                    dedupe_window=args.dedupe_window,
                )
    except StrictStop as stop:
        print(f"rejected: {stop.rejected}", file=sys.stderr)
        print("stopped at the first rejected line (--strict)", file=sys.stderr)
        return EXIT_REJECTED
    finally:
        for source in sources:
            source.close()
    if not args.quiet:
        print_summary(result.stats)
    if renderer is not None:
        for line in renderer.summary():
            print(line, file=sys.stderr)
        if renderer.failures:
            return EXIT_ERROR
    return EXIT_REJECTED if result.stats.lines_rejected else EXIT_OK


def _default_workers(sources: list[Any]) -> int:
    """Every core, for input large enough to repay starting the workers (see docs/scale.md)."""
    from leadrules.engine.replay.pool import default_workers
    from leadrules.engine.replay.shares import PARALLEL_BYTES

    if sum(s.size() for s in sources) < PARALLEL_BYTES:
        return 1
    return min(default_workers(), 255)


def _renderer(args: argparse.Namespace) -> Any:
    from leadrules.engine.language.templates import TemplateSet
    from leadrules.engine.replay.render import Renderer

    return Renderer(TemplateSet(Path(args.rules) / "templates"), quiet=args.quiet)


def cmd_explain(args: argparse.Namespace) -> int:
    from leadrules.engine.replay.explain import explain_prospect, render_text

    rules = load(args)
    if args.files:
        world, at, rejected = _replayed_world(args, rules)
    else:
        world, at = _stored_world(args, args.prospect)
        rejected = 0
    report = explain_prospect(world, rules, args.prospect, at)
    if report is None:
        print(f"leadrules: no events for prospect {args.prospect!r}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render_text(report))
    return EXIT_REJECTED if rejected else EXIT_OK


def _replayed_world(args: argparse.Namespace, rules: Any) -> tuple[Any, int, int]:
    from leadrules.engine.core.turn import Options
    from leadrules.engine.replay.dry_run import replay

    sources = open_sources(args.files)

    class _Discard:
        def write(self, data: bytes) -> int:
            return len(data)

    try:
        result = replay(
            sources,
            rules,
            _Discard(),  # type: ignore[arg-type]
            until=args.at,
            options=Options(keep_history=True),
            on_reject=lambda item: print(f"rejected: {item}", file=sys.stderr),
        )
    finally:
        for source in sources:
            source.close()
    at = result.end_at if result.end_at is not None else 0
    return result.world, at, result.stats.lines_rejected


def _stored_world(args: argparse.Namespace, prospect: str) -> tuple[Any, int]:
    """The daemon's view of one prospect, read from its database into an in-memory world."""
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.db_world import DbWorld
    from leadrules.engine.replay.memory_world import MemoryWorld

    store = open_store(args)
    world = MemoryWorld()
    with store.session() as session:
        stored = DbWorld(session, 0)
        canonical = stored.resolve(prospect)
        if canonical != prospect:
            world.link(prospect, canonical)
        state = stored.get(canonical)
        if state is not None:
            world.states[canonical] = state
            for timer in stored.load_all_timers():
                if stored.resolve(timer.prospect) == canonical:
                    world.schedule(timer)
            account = None if state.account is None else stored.accounts.get(state.account)
            if account is not None:  # the account and its members, for its score
                world.accounts[account.id] = account
                for member in account.members:
                    member_state = stored.peek(member)
                    if member_state is not None:
                        world.states.setdefault(member, member_state)
    store.dispose()
    return world, args.at if args.at is not None else WallClock().now_us()
