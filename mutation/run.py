"""`make mutation`: mutation testing of the core with cosmic-ray, per module.

Why a runner around cosmic-ray: its own executor runs the whole test command for every mutant
(about 12 s here, so hours for ~1,100 mutants). This one keeps cosmic-ray's mutants, operators
and session database (`cr-report build/mutation/session.sqlite` reads it) and only changes how
each mutant is tested:

1. the repository is copied into `build/mutation/tree-N` (one per job), with
   `build/mutation/layout-N/leadrules/{engine,adapters}` linking into it; tests run there with
   that layout first on PYTHONPATH, so no mutant ever touches the working tree;
2. one run of the fast tests under coverage records which tests execute each line;
3. each mutant is applied in a tree and runs only the tests that execute the statement it
   changed (fastest first, stopping at the first failure); a mutant on a line no test
   executes survives without a run, and one on a line run at import (a constant, a default)
   runs every test that executes some code of its module.

A surviving mutant listed in mutation/EQUIVALENT.md (module, operator, and the text of the line
it changes) counts as equivalent: it cannot change behaviour, so it is left out of the score.

Usage: python mutation/run.py [--jobs 2] [--rev COMMIT] [--fail-under 90] [--modules a b]
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
import tomllib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import cosmic_ray.plugins
from cosmic_ray.mutating import use_mutation
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem, WorkResult

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = ROOT / "build" / "mutation"
CONFIG = HERE / "cosmic-ray.toml"
EQUIVALENT = HERE / "EQUIVALENT.md"
FAST_TESTS = ["tests/core", "tests/replay", "tests/test_examples.py"]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
MODULES = [
    "identity",
    "turn",
    "lifecycle",
    "scoring",
    "triggers",
    "sequences",
    "conditions",
    "matching",
    "predicates",
    "dedupe",
]


def make_tree(n: int, rev: str | None) -> tuple[Path, dict[str, str]]:
    """A copy of the repository (at `rev`, or the work tree's tracked and new files) and the
    environment that imports `leadrules` from it."""
    tree, layout = BUILD / f"tree-{n}", BUILD / f"layout-{n}"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.rmtree(layout, ignore_errors=True)
    tree.mkdir(parents=True)
    if rev:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", rev], cwd=ROOT, check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        # The runner and its config are today's, whatever the tests and engine are.
        shutil.copytree(HERE, tree / "mutation", dirs_exist_ok=True)
    else:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.split(b"\0")
        for raw in listed:
            name = raw.decode()
            src = ROOT / name
            if name and src.is_file():
                (tree / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, tree / name)
    (layout / "leadrules").mkdir(parents=True)
    for package in ("engine", "adapters"):
        (layout / "leadrules" / package).symlink_to(tree / package)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(layout), str(HERE)]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant written within the same second as the last
    env.pop("PYTEST_ADDOPTS", None)
    where = subprocess.run(
        [sys.executable, "-c", "import leadrules.engine as e; print(e.__file__)"],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(tree.resolve()):
        sys.exit(f"leadrules.engine imports from {where}, not from the copy {tree}")
    return tree, env


def measure_coverage(tree: Path, env: dict[str, str]) -> tuple[dict, dict[str, float]]:
    """Run the fast tests once under coverage: {file: {line: [test ids]}} and durations."""
    out = BUILD / "coverage.json"
    cmd = [*PYTEST, "-p", "coverage_plugin", *FAST_TESTS]
    run_env = dict(env, LEADRULES_MUTATION_COVERAGE=str(out))
    out.unlink(missing_ok=True)
    proc = subprocess.run(cmd, cwd=tree, env=run_env, capture_output=True, text=True)
    if not out.exists():
        sys.exit(f"the fast tests did not run:\n{proc.stdout[-4000:]}")
    data = json.loads(out.read_text())
    failed = set(data["failed"])
    if failed:
        # A test that fails on the unchanged code can kill nothing: leave it out, and say so.
        print(f"left out, failing before any mutation: {', '.join(sorted(failed))}")
        for by_line in data["lines"].values():
            for line, tests in by_line.items():
                by_line[line] = [t for t in tests if t not in failed]
        data["durations"] = {t: d for t, d in data["durations"].items() if t not in failed}
    return data["lines"], data["durations"]


def annotation_spans(path: Path) -> list[tuple[int, int, int, int]]:
    """Source spans of annotations: never evaluated (`from __future__ import annotations`)."""
    spans = []
    for node in ast.walk(ast.parse(path.read_text())):
        found = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(node.returns)
            args = node.args
            for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if a is not None:
                    found.append(a.annotation)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
        for a in found:
            if a is not None:
                spans.append((a.lineno, a.col_offset, a.end_lineno or 0, a.end_col_offset or 0))
    return spans


def statement_lines(path: Path) -> dict[int, list[range]]:
    """For each line, the lines of the smallest simple statement (or compound header)
    holding it, then those of the compound statements around it: what coverage may have
    recorded for a change on that line. (A `continue` or `pass` may leave no line event of
    its own; the header of the `if` or loop around it was executed by the same tests.)"""
    spans: dict[int, list[range]] = {}

    def visit(node: ast.AST, outer: list[range]) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.stmt):
                visit(child, outer)
                continue
            end = child.end_lineno or child.lineno
            body = getattr(child, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                end = body[0].lineno - 1  # a compound statement: its header only
            span = range(child.lineno, max(end, child.lineno) + 1)
            for line in span:
                spans[line] = [span, *outer]
            visit(child, [span, *outer][:3])

    visit(ast.parse(path.read_text()), [])
    return spans


# A row of EQUIVALENT.md names its mutants by module, operator and the text of the line the
# mutant changes (stripped, comment included: `continue` and `continue  # why` are two
# lines), so a row still holds when code moves.
EquivalentKey = tuple[str, str, str]
_CELL = re.compile(r"(?<!\\)\|")


def mutated_code(source: Path, row: int, diff: str | None) -> str:
    """The stripped text of the line a mutant changes: the first line its diff removes (the
    source as it was when the mutant was made), else line `row` of `source`."""
    in_hunk = False
    for line in (diff or "").splitlines():
        if line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith("-"):
            return line[1:].strip()
    try:
        return source.read_text().splitlines()[row - 1].strip()
    except (OSError, IndexError):
        return ""


def load_equivalents() -> dict[EquivalentKey, int]:
    """The rows of the table in EQUIVALENT.md, `| module | operator | `code` | why |`, each
    keyed by (module, operator, code), with its line number in EQUIVALENT.md."""
    rows: dict[EquivalentKey, int] = {}
    if not EQUIVALENT.exists():
        return rows
    for number, line in enumerate(EQUIVALENT.read_text().splitlines(), start=1):
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in _CELL.split(line.strip().strip("|"))]
        if len(cells) < 4 or not (cells[2].startswith("`") and cells[2].endswith("`")):
            continue  # the header, its rule, or prose
        code = cells[2][1:-1].replace("\\|", "|").strip()
        rows[(cells[0], cells[1], code)] = number
    return rows


def excluded_operators() -> re.Pattern[str]:
    """The operators cosmic-ray.toml leaves out, as `cr-filter-operators` matches them."""
    with CONFIG.open("rb") as f:
        config = tomllib.load(f)["cosmic-ray"]
    patterns = config["filters"]["operators-filter"]["exclude-operators"]
    return re.compile("|".join(f"(?:{p})" for p in patterns) or "(?!)")


def module_of(spec_path: Path) -> str:
    return spec_path.stem


def short_operator(name: str) -> str:
    return name.split("/", 1)[-1]


class Runner:
    def __init__(self, trees: list[tuple[Path, dict[str, str]]], lines: dict, durations: dict):
        self.free: queue.Queue[tuple[Path, dict[str, str]]] = queue.Queue()
        for tree in trees:
            self.free.put(tree)
        self.lines = lines
        self.durations = durations
        self.all_tests = sorted(durations, key=durations.__getitem__)
        base = trees[0][0]
        self.base = base
        self.stmt_lines: dict[str, dict[int, list[range]]] = {}
        self.annotations: dict[str, list[tuple[int, int, int, int]]] = {}
        self.module_tests: dict[str, set[str]] = {}
        self.servers: dict[Path, subprocess.Popen[str]] = {}

    def _key(self, spec_path: Path) -> str:
        return str((self.base / spec_path).resolve())

    def in_annotation(self, item: WorkItem) -> bool:
        spec = item.mutations[0]
        key = self._key(spec.module_path)
        if key not in self.annotations:
            self.annotations[key] = annotation_spans(Path(key))
        start, end = tuple(spec.start_pos), tuple(spec.end_pos)
        return any((a, b) <= start and end <= (c, d) for a, b, c, d in self.annotations[key])

    def tests_for(self, item: WorkItem) -> list[str] | None:
        """Tests executing the mutated statement; None when none does."""
        spec = item.mutations[0]
        key = self._key(spec.module_path)
        if key not in self.stmt_lines:
            self.stmt_lines[key] = statement_lines(Path(key))
        by_line = self.lines.get(key, {})
        wanted: set[str] = set()
        executed = False
        for line in range(spec.start_pos[0], spec.end_pos[0] + 1):
            for span in self.stmt_lines[key].get(line, [range(line, line + 1)]):
                for covered in span:
                    tests = by_line.get(str(covered))
                    if tests is not None:
                        executed = True
                        wanted.update(tests)
                if executed:
                    break  # the innermost statement with a record
        if not executed or not wanted:
            return None  # no (passing) test executes it
        if "" in wanted:
            # Run at import (a constant, a default, a class attribute): what reads it is the
            # module's code, so the tests that execute any of that code.
            if key not in self.module_tests:
                self.module_tests[key] = {t for ts in by_line.values() for t in ts} - {""}
            wanted = set(self.module_tests[key]) or set(self.all_tests)
        return sorted(wanted, key=lambda t: self.durations.get(t, 0.0))

    def pytest(
        self, tree: Path, env: dict[str, str], args: list[str], timeout: float
    ) -> tuple[int | None, str]:
        """Run pytest in `tree` through its fork server: (exit code or None, output tail)."""
        server = self.servers.get(tree)
        if server is None or server.poll() is not None:
            server = self.servers[tree] = subprocess.Popen(
                [sys.executable, str(HERE / "forkserver.py")],
                cwd=tree,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert server.stdout is not None
            server.stdout.readline()  # ready
        assert server.stdin is not None and server.stdout is not None
        output = tree.parent / f"{tree.name}.out"
        request = {
            "cwd": str(tree),
            "path": env["PYTHONPATH"].split(os.pathsep),
            "args": [*PYTEST[3:], *args],
            "timeout": timeout,
            "output": str(output),
        }
        server.stdin.write(json.dumps(request) + "\n")
        server.stdin.flush()
        answer = json.loads(server.stdout.readline())
        return answer["code"], output.read_text(errors="replace")[-2000:]

    def close(self) -> None:
        for server in self.servers.values():
            if server.stdin is not None:
                server.stdin.close()
            server.wait()

    def run(self, item: WorkItem) -> WorkResult:
        spec = item.mutations[0]
        tests = self.tests_for(item)
        tree, env = self.free.get()
        try:
            operator = cosmic_ray.plugins.get_operator(spec.operator_name)(**spec.operator_args)
            with use_mutation(tree / spec.module_path, operator, spec.occurrence) as (old, new):
                if new is None:
                    return WorkResult(worker_outcome=WorkerOutcome.NO_TEST)
                diff = "".join(
                    difflib.unified_diff(
                        old.splitlines(True), new.splitlines(True), str(spec.module_path), "mutant"
                    )
                )
                if tests is None:  # the diff names the line (EQUIVALENT.md's key)
                    return WorkResult(
                        worker_outcome=WorkerOutcome.NORMAL,
                        test_outcome=TestOutcome.SURVIVED,
                        output="no test executes this line",
                        diff=diff,
                    )
                budget = sum(self.durations.get(t, 1.0) for t in tests)
                timeout = 30 + 4 * budget
                code, output = self.pytest(tree, env, ["-x", *tests], timeout)
                if code is None:
                    outcome, output = TestOutcome.KILLED, f"timeout after {timeout:.0f}s"
                elif code == 0:
                    outcome = TestOutcome.SURVIVED
                elif code in (3, 4, 5):
                    outcome = TestOutcome.INCOMPETENT  # the runner, not a test, failed
                else:
                    outcome = TestOutcome.KILLED
            return WorkResult(
                worker_outcome=WorkerOutcome.NORMAL, test_outcome=outcome, output=output, diff=diff
            )
        finally:
            self.free.put((tree, env))


def equivalent_notes(
    equivalents: dict[EquivalentKey, int], seen: set[EquivalentKey], sources: dict[str, Path]
) -> list[str]:
    """What a reviewer of EQUIVALENT.md should look at: rows of the modules tested that match
    no surviving mutant (the code moved on, or a test kills them now), and rows whose code
    stands on several lines of its module (the row covers each of them)."""
    notes = []
    for (module, operator, code), number in sorted(equivalents.items(), key=lambda r: r[1]):
        source = sources.get(module)
        if source is None:
            continue  # a module this session did not test
        if (module, operator, code) not in seen:
            notes.append(
                f"EQUIVALENT.md:{number}: matches no surviving mutant: {module} {operator} `{code}`"
            )
        try:
            lines = source.read_text().splitlines()
        except OSError:
            continue
        found = [n for n, text in enumerate(lines, start=1) if text.strip() == code]
        if len(found) > 1:
            where = ", ".join(map(str, found))
            notes.append(f"EQUIVALENT.md:{number}: `{code}` stands on lines {where} of {module}")
    return notes


def report(db: WorkDB, started: float, fail_under: float) -> int:
    equivalents = load_equivalents()
    seen_equivalents: set[EquivalentKey] = set()
    stats: dict[str, Counter[str]] = defaultdict(Counter)
    sources: dict[str, Path] = {}
    survivors = []
    excluded = excluded_operators()
    for item, result in db.completed_work_items:
        spec = item.mutations[0]
        module = module_of(spec.module_path)
        if result.worker_outcome in (WorkerOutcome.SKIPPED, WorkerOutcome.NO_TEST):
            continue
        if excluded.match(spec.operator_name):
            continue  # a session made before an operator was left out
        row = stats[module]
        row["mutants"] += 1
        source = sources.setdefault(module, BUILD / "tree-0" / spec.module_path)
        if result.test_outcome == TestOutcome.INCOMPETENT:
            row["incompetent"] += 1
            continue
        if result.is_killed:
            row["killed"] += 1
            continue
        operator = short_operator(spec.operator_name)
        key = (module, operator, mutated_code(source, spec.start_pos[0], result.diff))
        if key in equivalents:
            row["equivalent"] += 1
            seen_equivalents.add(key)
        else:
            row["survived"] += 1
            survivors.append((key, spec.start_pos, result))
    lines = [
        "| module | mutants | killed | equivalent | survived | score % |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    failing = []
    total: Counter[str] = Counter()
    for module in [m for m in MODULES if m in stats] + sorted(set(stats) - set(MODULES)):
        row = stats[module]
        total.update(row)
        counted = row["mutants"] - row["equivalent"] - row["incompetent"]
        score = 100.0 * row["killed"] / counted if counted else 100.0
        if score < fail_under:
            failing.append(module)
        lines.append(
            f"| {module} | {row['mutants']} | {row['killed']} | {row['equivalent']} "
            f"| {row['survived']} | {score:.1f} |"
        )
    counted = total["mutants"] - total["equivalent"] - total["incompetent"]
    score = 100.0 * total["killed"] / counted if counted else 100.0
    lines.append(
        f"| **all** | {total['mutants']} | {total['killed']} | {total['equivalent']} "
        f"| {total['survived']} | {score:.1f} |"
    )
    table = "\n".join(lines)
    survivor_text = []
    for (module, operator, code), pos, result in sorted(survivors, key=lambda s: (s[0][0], s[1])):
        survivor_text.append(
            f"## {module}:{pos[0]}:{pos[1]} {operator}\n`{code}`\n\n"
            f"{result.output or ''}\n{result.diff or ''}"
        )
    (BUILD / "survivors.md").write_text("\n".join(survivor_text))
    (BUILD / "report.md").write_text(table + "\n")
    print(table)
    print(f"\nwall time: {time.monotonic() - started:.0f} s")
    for line in equivalent_notes(equivalents, seen_equivalents, sources):
        print(line)
    if survivors:
        print(f"{len(survivors)} surviving mutants: {BUILD / 'survivors.md'}")
    if incompetent := total["incompetent"]:
        print(f"{incompetent} mutants could not be tested (test runner errors)")
    if failing:
        print(f"below {fail_under:.0f}%: {', '.join(failing)}")
        return 1
    return 0


def main() -> int:
    global BUILD
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rev", help="test this commit instead of the work tree")
    parser.add_argument("--fail-under", type=float, default=90.0)
    parser.add_argument("--modules", nargs="*", help="only these modules (e.g. identity turn)")
    parser.add_argument("--report", action="store_true", help="print the last session's table")
    parser.add_argument("--build", type=Path, default=BUILD, help="work folder (build/mutation)")
    parser.add_argument(
        "--resume", action="store_true", help="go on with the last session's untested mutants"
    )
    parser.add_argument(
        "--retest-survivors",
        action="store_true",
        help="with --resume: first test the surviving mutants again (after new tests)",
    )
    args = parser.parse_args()
    BUILD = args.build.resolve()
    started = time.monotonic()
    session = BUILD / "session.sqlite"
    if args.report:
        with use_db(str(session), WorkDB.Mode.open) as db:
            return report(db, started, args.fail_under)

    BUILD.mkdir(parents=True, exist_ok=True)
    trees = [make_tree(n, args.rev) for n in range(args.jobs)]
    print(f"copies ready in {time.monotonic() - started:.0f} s; measuring coverage", flush=True)
    lines, durations = measure_coverage(*trees[0])
    print(f"{len(durations)} tests; coverage in {time.monotonic() - started:.0f} s", flush=True)

    base = trees[0][0]
    tools = Path(sys.executable).parent
    if not args.resume:
        session.unlink(missing_ok=True)
        init = [tools / "cosmic-ray", "init", str(CONFIG), str(session)]
        subprocess.run(init, cwd=base, check=True)
        only = [tools / "cr-filter-operators", str(session), str(CONFIG)]
        subprocess.run(only, cwd=base, check=True)
    retest: set[str] | None = None
    if args.resume and args.retest_survivors:
        equivalents = load_equivalents()
        query = (
            "SELECT r.job_id, m.module_path, m.start_pos_row, m.operator_name, r.diff"
            " FROM work_results r JOIN mutation_specs m ON m.job_id = r.job_id"
            " WHERE r.test_outcome = 'SURVIVED'"
        )
        with sqlite3.connect(session) as con:
            retest = {
                job
                for job, path, line, operator, diff in con.execute(query).fetchall()
                if (
                    module_of(Path(path)),
                    short_operator(operator),
                    mutated_code(trees[0][0] / path, line, diff),
                )
                not in equivalents
            }
            con.executemany("DELETE FROM work_results WHERE job_id = ?", [(j,) for j in retest])

    runner = Runner(trees, lines, durations)
    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = []
        for item in db.pending_work_items:
            module = module_of(item.mutations[0].module_path)
            if args.modules and module not in args.modules:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
            elif runner.in_annotation(item):
                db.set_result(
                    item.job_id,
                    WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="annotation"),
                )
            else:
                pending.append(item)
        if retest is not None:  # the survivors first, then what was not tested yet
            pending.sort(key=lambda item: item.job_id not in retest)
        print(f"{len(pending)} mutants to test with {args.jobs} jobs", flush=True)
        try:
            with ThreadPoolExecutor(max_workers=args.jobs) as pool:
                for done, (item, result) in enumerate(
                    zip(pending, pool.map(runner.run, pending), strict=True), start=1
                ):
                    db.set_result(item.job_id, result)
                    if done % 100 == 0:
                        elapsed = time.monotonic() - started
                        print(f"  {done}/{len(pending)} in {elapsed:.0f} s", flush=True)
        finally:
            runner.close()
        return report(db, started, args.fail_under)


if __name__ == "__main__":
    sys.exit(main())
