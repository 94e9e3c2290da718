"""How long the files `turnscope repro` writes take to run: one per failure category.

Records the demo's first run of each failure category the installed SDK produces (and every
max-turns run), writes each one's replay with `turnscope repro`, then times
`python -m pytest -q FILE` on each, one process per file as a user would run it, beside two
floors measured in the same round: a pytest run of an empty test (the interpreter, pytest and
its plugins) and of an empty test that imports the SDK (``import agents``: what any test of
an agent pays). Prints the median wall time of each file over the rounds.

When Hypothesis is installed (this project's tests use it) every pytest run pays its plugin,
which imports all of Hypothesis at the end of the session: about a second here, whatever the
test. A second column then times the same runs with ``-p no:hypothesispytest``, as in an
environment without Hypothesis.

    .venv/bin/python benchmarks/repro_replay.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Record, write, time; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from turnscope.cli import main as cli
    from turnscope.demo.runner import CASES, has_feature, run_demo

    chosen, seen = [], set()
    for case in CASES:
        if not has_feature(case.needs) or case.category in (None, "incomplete"):
            continue
        if case.category not in seen or case.category == "max_turns_exceeded":
            chosen.append(case)
            seen.add(case.category)
    folder = Path(tempfile.mkdtemp(prefix="repro-bench-"))
    db = folder / "demo.db"
    summary = run_demo(str(db), progress=False, cases=chosen)
    files = {}
    for result in summary.results:
        path = folder / f"test_repro_{result.trace_id[-12:]}.py"
        with contextlib.redirect_stdout(io.StringIO()):  # its "Wrote ..." lines
            cli(["repro", result.trace_id, "--db", str(db), "-o", str(path)])
        files[result.case.title] = path
    files = {
        "(empty test)": _floor(folder / "test_empty.py", ""),
        "(empty test importing agents)": _floor(folder / "test_sdk.py", "import agents  # noqa\n"),
        **files,
    }
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    variants = {"median wall (s)": []}
    if importlib.util.find_spec("_hypothesis_pytestplugin") is not None:
        variants["without hypothesis plugin"] = ["-p", "no:hypothesispytest"]
    times = {(name, v): [] for name in files for v in variants}
    for _ in range(args.rounds):
        for name, variant in times:
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                + variants[variant]
                + [str(files[name])],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
            )
            times[name, variant].append(time.perf_counter() - started)
            if proc.returncode != 0:
                print(f"FAILED {name}:\n{proc.stdout[-2000:]}", file=sys.stderr)
    print(f"{'replay of':<48}" + "".join(f" {v:>26}" for v in variants) + f"  rounds={args.rounds}")
    for name in files:
        medians = [statistics.median(times[name, v]) for v in variants]
        print(f"{name:<48}" + "".join(f" {m:>26.2f}" for m in medians))


def _floor(path: Path, head: str) -> Path:
    """An empty test file (after ``head``): a floor to compare the replays with."""
    path.write_text(f"{head}\n\ndef test_nothing():\n    pass\n")
    return path


if __name__ == "__main__":
    main()
