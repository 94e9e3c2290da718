"""A small MCP stdio server for the diagnosis tests: ``python mcp_server.py MODE``.

Modes: ``ok`` (healthy), ``tool_error`` (the tool fails: a result with ``isError``),
``die`` (the process exits in the middle of a call), ``list_fails`` (listing tools fails).
Works with mcp 1.x (``FastMCP``) and 2.x (``MCPServer``), the versions the two SDKs install.
"""

from __future__ import annotations

import os
import sys

try:  # mcp 2.x renamed FastMCP
    from mcp.server.mcpserver import MCPServer as Base
except ImportError:
    from mcp.server.fastmcp import FastMCP as Base

MODE = sys.argv[1] if len(sys.argv) > 1 else "ok"


class Server(Base):  # type: ignore[misc,valid-type]
    """The server; in ``list_fails`` mode its tool list cannot be read."""

    async def list_tools(self):  # type: ignore[no-untyped-def]
        """List tools, or fail like a broken server."""
        if MODE == "list_fails":
            raise RuntimeError("tool registry unavailable")
        return await super().list_tools()


server = Server("orders")


@server.tool()
def lookup_order(order_id: str) -> str:
    """Look up an order by id."""
    if MODE == "tool_error":
        raise ValueError(f"order {order_id} not found in the warehouse")
    if MODE == "die":
        os._exit(3)  # the server dies with the call in flight
    return f"Order {order_id}: shipped"


if __name__ == "__main__":
    server.run()
