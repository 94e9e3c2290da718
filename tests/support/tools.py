"""The SDK tools the test agents call."""

from __future__ import annotations

import asyncio
from typing import Any

from agents import function_tool


def lookup_tool(answer: str = "found", *, pause: float | None = None) -> Any:
    """A ``lookup(q)`` function tool answering ``answer`` (``{q}`` is replaced by the query);
    with ``pause``, an async tool that sleeps that long first (so concurrent runs interleave)."""
    if pause is None:

        @function_tool
        def lookup(q: str) -> str:
            """Look something up."""
            return answer.format(q=q)

        return lookup

    @function_tool
    async def lookup(q: str) -> str:  # type: ignore[no-redef]
        """Look something up."""
        await asyncio.sleep(pause)
        return answer.format(q=q)

    return lookup
