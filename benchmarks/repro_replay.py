"""How long the files `turnscope repro` writes take to run: one per failure category.

Records the demo's first run of each failure category the installed SDK produces (and every
max-turns run), writes each one's replay with `turnscope repro`, then times
`python -m pytest -q FILE` on each, one process per file as a user would run it, beside a
pytest run of an empty test in the same round (the interpreter, pytest and its plugins: the
floor). Prints the median wall time of each file over the rounds, and the floor.

    .venv/bin/python benchmarks/repro_replay.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
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
    (folder / "test_empty.py").write_text("def test_nothing():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    times: dict[str, list[float]] = {name: [] for name in ["(empty test)", *files]}
    for _ in range(args.rounds):
        for name in times:
            path = folder / "test_empty.py" if name == "(empty test)" else files[name]
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
            )
            times[name].append(time.perf_counter() - started)
            if proc.returncode != 0:
                print(f"FAILED {name}:\n{proc.stdout[-2000:]}", file=sys.stderr)
    print(f"{'replay of':<48} {'median wall (s)':>16}  rounds={args.rounds}")
    for name, values in times.items():
        print(f"{name:<48} {statistics.median(values):>16.2f}")


if __name__ == "__main__":
    main()
