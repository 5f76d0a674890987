"""Runs pytest for mutation/run.py in a forked child, one request at a time.

Starting pytest costs about a second, mostly imports (pytest, hypothesis, pydantic, jinja2,
the test receivers' servers). This process imports those third-party packages once; for each
mutant it forks, and the child imports `leadrules` and the tests afresh from the copy it is
pointed at, so it sees the mutated file. Nothing of leadrules or the tests is imported here.

Protocol: one JSON request per line on stdin ({"cwd", "args", "timeout", "output"}), one JSON
answer per line on stdout ({"code"}; code None after a timeout).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import time

# Third-party modules the tests import; leadrules and tests are deliberately absent.
PRELOAD = [
    "pytest",
    "_pytest.pytester",
    "xdist",
    "hypothesis",
    "hypothesis.strategies",
    "yaml",
    "pydantic",
    "jinja2",
    "jinja2.sandbox",
    "orjson",
    "regex",
    "durable.lang",
    "aiosmtpd.controller",
    "httpx",
    "sqlalchemy",
    "sqlmodel",
    "fastapi",
]


def _run(request: dict) -> int | None:
    output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pid = os.fork()
    if pid == 0:  # the child: run pytest in the copy, then leave without cleanup
        try:
            os.setpgid(0, 0)
            os.dup2(output, 1)
            os.dup2(output, 2)
            os.chdir(request["cwd"])
            sys.path[:0] = request["path"]
            sys.dont_write_bytecode = True
            importlib.invalidate_caches()
            import pytest

            code = pytest.main(request["args"])
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(int(code))
        except BaseException:  # a child must never return into the server's loop
            os._exit(3)
    os.close(output)
    deadline = time.monotonic() + request["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


def main() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for leaked in [
        m for m in sys.modules if m == "leadrules" or m.startswith(("leadrules.", "tests"))
    ]:
        del sys.modules[leaked]
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps({"code": _run(request)}), flush=True)


if __name__ == "__main__":
    main()
