"""Memory stays bounded: resident memory under a sustained load of agent runs.

Runs real ``Runner.run`` workloads for ``--seconds`` (default 60) in three configurations, one
after the other in fresh subprocesses so their memory does not mix:

- ``baseline``        no tracing processor at all
- ``turnscope``       TurnscopeProcessor -> SQLite
- ``turnscope_down``  TurnscopeProcessor -> SQLite and OTLP to an endpoint that refuses
                      connections the whole time (a backend that is down)
- ``turnscope_hung``  TurnscopeProcessor -> SQLite and OTLP to an endpoint that accepts
                      connections and never answers (an outage behind a load balancer: the
                      worst case, every export waits for its timeout)

It prints RSS every 10 s and the growth over the second half of the run (a leak keeps growing;
a bounded cache levels off).
Run: ``.venv/bin/python benchmarks/memory.py [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def blackhole() -> int:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            held.append(conn)  # kept open, never read: the exporter waits for its timeout

    threading.Thread(target=accept, daemon=True).start()
    return int(server.getsockname()[1])


def child(mode: str, seconds: float, db: str) -> None:
    """Run the load in this process and print samples as JSON."""
    from agents import Agent, Runner, function_tool, set_trace_processors

    from turnscope.demo.model import DemoModel, call, text

    processor: Any = None
    if mode != "baseline":
        from turnscope.exporter.processor import TurnscopeProcessor

        options: dict[str, Any] = {}
        if mode == "turnscope_down":
            options["otlp_endpoint"] = "http://127.0.0.1:9"
        elif mode == "turnscope_hung":
            options["otlp_endpoint"] = f"http://127.0.0.1:{blackhole()}"
        processor = TurnscopeProcessor(db, **options)
        set_trace_processors([processor])
    else:
        set_trace_processors([])

    @function_tool
    def lookup(q: str) -> str:
        """Look something up."""
        return "result " * 50

    async def batch(n: int) -> None:
        async def one(i: int) -> None:
            agent = Agent(
                name="Worker",
                tools=[lookup],
                model=DemoModel(
                    [[call("lookup", {"q": f"{n}-{i}-{t}"})] for t in range(3)] + [[text("ok")]]
                ),
            )
            await Runner.run(agent, f"job {n}-{i} " * 20)

        await asyncio.gather(*(one(i) for i in range(20)))

    samples = []
    started = time.monotonic()
    runs = 0
    next_sample = 0.0
    while (elapsed := time.monotonic() - started) < seconds:
        asyncio.run(batch(runs))
        runs += 20
        if elapsed >= next_sample:
            samples.append({"t": round(elapsed, 1), "rss_mb": round(rss_mb(), 1), "runs": runs})
            next_sample += 10
    samples.append(
        {"t": round(time.monotonic() - started, 1), "rss_mb": round(rss_mb(), 1), "runs": runs}
    )
    stats = processor.stats() if processor is not None else {}
    if processor is not None:
        processor.shutdown(10)
    print(json.dumps({"samples": samples, "stats": stats}))


def main() -> None:
    """Run each configuration in a subprocess and summarise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seconds, args.db)
        return
    modes = ["baseline", "turnscope"]
    try:
        from turnscope.config import Settings

        Settings.resolve(db=False, otlp_endpoint="http://127.0.0.1:9")
        modes += ["turnscope_down", "turnscope_hung"]
    except Exception:
        print("(OTLP export not available: outage case skipped)")
    tmp = Path(tempfile.mkdtemp(prefix="turnscope-mem-"))
    print(
        f"{args.seconds:.0f} s of 20 concurrent runs at a time (4 turns each), per configuration\n"
    )
    for mode in modes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--seconds",
                str(args.seconds),
                "--db",
                str(tmp / f"{mode}.db"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        samples = result["samples"]
        half = [s for s in samples if s["t"] >= args.seconds / 2] or samples[-1:]
        growth = samples[-1]["rss_mb"] - half[0]["rss_mb"]
        trail = " ".join(f"{s['rss_mb']:.0f}" for s in samples)
        print(f"{mode:<15} runs={samples[-1]['runs']:>6}  RSS MiB over time: {trail}")
        print(f"{'':<15} growth over the second half: {growth:+.1f} MiB")
        if result["stats"]:
            s = result["stats"]
            print(
                f"{'':<15} stats: written={s['written']} dropped={s['dropped']} "
                f"failed={s['failed']} traces_in_memory={s['traces_in_memory']}"
            )
            otlp = s.get("sinks", {}).get("otlp")
            if otlp:
                print(
                    f"{'':<15} otlp: emitted={otlp.get('emitted')} "
                    f"exported={otlp.get('exported')} dropped={otlp.get('dropped')} "
                    f"queued={otlp.get('queued')}"
                )


if __name__ == "__main__":
    main()
