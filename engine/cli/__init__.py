"""The `leadrules` command line: check, replay, explain, test, backtest, report, schema, and
the daemon (`run`) with its tools (export, forget, quarantine, outbox).

Exit codes (docs/cli.md): 0 success; 1 invalid rules or config, or another error;
2 bad command-line usage; 3 a replay or explain in which some input lines were rejected
(the rest was processed; `--strict` stops at the first such line).
"""

from __future__ import annotations

import sys

from leadrules.engine.cli import daemon_commands, replay_commands, rules_commands
from leadrules.engine.cli.common import EXIT_ERROR
from leadrules.engine.cli.parser import build_parser
from leadrules.engine.errors import LeadrulesError, RuleError

__all__ = ["build_parser", "main"]

COMMANDS = {
    "check": rules_commands.cmd_check,
    "schema": rules_commands.cmd_schema,
    "test": rules_commands.cmd_test,
    "backtest": rules_commands.cmd_backtest,
    "report": rules_commands.cmd_report,
    "replay": replay_commands.cmd_replay,
    "explain": replay_commands.cmd_explain,
    "run": daemon_commands.cmd_run,
    "export": daemon_commands.cmd_export,
    "forget": daemon_commands.cmd_forget,
    "quarantine": daemon_commands.cmd_quarantine,
    "outbox": daemon_commands.cmd_outbox,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RuleError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stdout)
        return EXIT_ERROR
    except LeadrulesError as exc:
        print(f"leadrules: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"leadrules: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
