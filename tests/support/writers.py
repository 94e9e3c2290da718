"""Agent processes for the many-writers tests: real ``Runner`` runs with the project's fake
model, each process with its own processor, all writing into one database that they open
fresh at the same moment.

``python writers.py URL RESULTS [--processes 8] [--runs 250] [--victim-runs N [--hang 3]]``
imports the SDK once, then forks the writers together (``pid PROCESS PID`` for each). Each
runs ``--runs`` runs, a few at a time, a mix of successes, recovered errors, failures,
streamed and not, with trace ids from ``trace_id(PROCESS, i)``, and writes
``RESULTS/PROCESS.json``: the processor's stats and every warning turnscope logged (a writer
that had to retry says so there). With ``--victim-runs``, one more process runs that many, then
starts ``--hang`` runs whose tool never returns, prints ``hang TRACE_ID`` for each and waits
to be killed. The launcher reaps each writer as it ends (``exit PROCESS CODE``).

The test imports ``expected`` from here: the verdict each run must get.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

CONCURRENT = 4  # runs in flight at once in one process
KINDS = 8  # scenarios, chosen by i % KINDS


def trace_id(process: int, i: int) -> str:
    """The trace id of run ``i`` of process ``process``."""
    return f"trace_{process:04x}{i:028x}"


def expected(i: int) -> tuple[str, str | None]:
    """(status, category) the verdict must give run ``i``."""
    return [
        ("succeeded", None),  # 0 a plain answer
        ("succeeded", None),  # 1 a tool, then an answer
        ("succeeded_with_errors", None),  # 2 the tool raised, the model was told, answered
        ("failed", "tool_error"),  # 3 the tool raised, no failure handler
        ("failed", "max_turns_exceeded"),  # 4 calls a tool every turn
        ("succeeded", None),  # 5 streamed answer
        ("failed", "tool_error"),  # 6 streamed, the tool raised
        ("succeeded", None),  # 7 streamed, a tool, then an answer
    ][i % KINDS]


def streamed(i: int) -> bool:
    """Whether run ``i`` is a streamed one."""
    return i % KINDS >= 5


class Warnings(logging.Handler):
    """Keeps what turnscope logs at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def one_run(process: int, i: int, tools: dict[str, Any] | None = None) -> None:
    """Run ``i``: its scenario from ``i % KINDS``; the exception a failing run raises is
    expected (the verdict is what the test checks)."""
    from agents import Agent, RunConfig, Runner

    from turnscope.demo.model import DemoModel, call, text

    tools = tools or scenario_tools()
    kind = i % KINDS
    q = {"q": f"{process}-{i}"}
    steps: list[Any]
    agent_tools = [tools["lookup"]]
    max_turns = 10
    if kind in (0, 5):
        steps = [[text(f"answer {i}")]]
    elif kind in (1, 7):
        steps = [[call("lookup", q)], [text("done")]]
    elif kind == 2:
        steps, agent_tools = [[call("flaky", q)], [text("done anyway")]], [tools["flaky"]]
    elif kind in (3, 6):
        steps, agent_tools = [[call("broken", q)], [text("never")]], [tools["broken"]]
    else:
        steps, max_turns = [[call("lookup", q)]] * 3, 2
    agent = Agent(name=f"Worker{kind}", tools=agent_tools, model=DemoModel(steps))
    config = RunConfig(workflow_name=f"proc{process}", trace_id=trace_id(process, i))
    try:
        if streamed(i):
            result = Runner.run_streamed(agent, "go", run_config=config, max_turns=max_turns)
            async for _ in result.stream_events():
                pass
        else:
            await Runner.run(agent, "go", run_config=config, max_turns=max_turns)
    except Exception:
        if expected(i)[0] != "failed":
            raise


async def hang(process: int, first: int, count: int) -> None:
    """``count`` runs whose tool never returns (the test kills the process meanwhile)."""
    from agents import Agent, RunConfig, Runner, function_tool

    from turnscope.demo.model import DemoModel, call

    @function_tool
    async def wait_forever(q: str) -> str:
        """Never returns."""
        await asyncio.Event().wait()
        return "never"

    async def run(i: int) -> None:
        agent = Agent(
            name="Stuck",
            tools=[wait_forever],
            model=DemoModel([[call("wait_forever", {"q": "x"})]]),
        )
        config = RunConfig(workflow_name=f"proc{process}", trace_id=trace_id(process, i))
        await Runner.run(agent, "go", run_config=config)

    tasks = [asyncio.ensure_future(run(first + k)) for k in range(count)]
    await asyncio.sleep(0.2)  # let every run reach its tool
    for k in range(count):
        print("hang", trace_id(process, first + k), flush=True)
    await asyncio.gather(*tasks)


def scenario_tools() -> dict[str, Any]:
    """The tools the scenarios call: ``lookup``, ``flaky`` (raises, the model is told) and
    ``broken`` (raises, no failure handler: the run stops)."""
    from agents import function_tool

    from support.tools import lookup_tool

    @function_tool
    def flaky(q: str) -> str:
        """Fails; the SDK tells the model."""
        raise RuntimeError(f"flaky failed for {q}")

    @function_tool(failure_error_function=None)
    def broken(q: str) -> str:
        """Fails; the run stops."""
        raise RuntimeError(f"broken for {q}")

    return {"lookup": lookup_tool("found {q}"), "flaky": flaky, "broken": broken}


async def main_async(process: int, runs: int, hang_count: int) -> None:
    tools = scenario_tools()
    for start in range(0, runs, CONCURRENT):
        batch = range(start, min(runs, start + CONCURRENT))
        await asyncio.gather(*(one_run(process, i, tools) for i in batch))
    if hang_count:
        await hang(process, runs, hang_count)


def child(url: str, results: str, process: int, runs: int, hang_count: int) -> int:
    """One writer process (forked): its own processor, runs, then a line with its result."""
    from agents import set_trace_processors

    from turnscope.exporter.processor import TurnscopeProcessor

    warnings = Warnings()
    logging.getLogger("turnscope").addHandler(warnings)
    processor = TurnscopeProcessor(url, flush_interval=0.1)
    set_trace_processors([processor])
    asyncio.run(main_async(process, runs, hang_count))
    set_trace_processors([])
    processor.shutdown(60)
    result = {"process": process, "stats": processor.stats(), "warnings": warnings.messages}
    # a file, not a line on the pipe all the writers share: nothing can cut it in two
    Path(results, f"{process}.json").write_text(json.dumps(result))
    return 0


def main() -> None:
    """Import once, then fork the writers at the same moment and wait for them all."""
    import argparse
    import os
    import threading

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: support.tools
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("results", help="folder for each writer's PROCESS.json")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--runs", type=int, default=250)
    parser.add_argument("--victim-runs", type=int, default=0, help="one more process: then hang")
    parser.add_argument("--hang", type=int, default=3)
    args = parser.parse_args()
    # everything a writer needs, imported before forking (as a prefork server does): eight
    # interpreters importing the SDK at once cost more than all their runs
    import agents  # noqa: F401

    import support.tools  # noqa: F401
    import turnscope.demo.model
    import turnscope.exporter.processor  # noqa: F401

    assert threading.active_count() == 1, "no thread may run across a fork"
    plan = [(n, args.runs, 0) for n in range(args.processes)]
    if args.victim_runs:
        plan.append((args.processes, args.victim_runs, args.hang))
    pids: dict[int, int] = {}
    for process, runs, hang_count in plan:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child(args.url, args.results, process, runs, hang_count)
            finally:
                os._exit(code)
        pids[pid] = process
    for pid, process in pids.items():
        print("pid", process, pid, flush=True)
    failed = 0
    while pids:  # reap each as it ends: a killed writer must not linger as a zombie
        pid, status = os.wait()
        process = pids.pop(pid)
        print("exit", process, os.waitstatus_to_exitcode(status), flush=True)
        failed += process < args.processes and status != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
