"""A tiny MCP stdio server for the demo's MCP cases: ``python mcp_server.py MODE``.

Modes: ``ok`` (healthy), ``tool_error`` (the tool fails: a result with ``isError``),
``die`` (the process exits in the middle of a call), ``list_fails`` (listing tools fails).
It speaks MCP's JSON-RPC over stdio with the standard library only: importing the ``mcp``
package's server takes over a second, and the demo runs inside the test suite several times.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

MODE = sys.argv[1] if len(sys.argv) > 1 else "ok"

TOOL = {
    "name": "lookup_order",
    "description": "Look up an order by id.",
    "inputSchema": {
        "type": "object",
        "properties": {"order_id": {"type": "string", "title": "Order Id"}},
        "required": ["order_id"],
    },
}


def answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The result of one request; raises ``LookupError`` for a request that fails."""
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "orders", "version": "1.0"},
        }
    if method == "tools/list":
        if MODE == "list_fails":
            raise LookupError("tool registry unavailable")
        return {"tools": [TOOL]}
    if method == "tools/call":
        order_id = (params.get("arguments") or {}).get("order_id")
        if MODE == "die":
            os._exit(3)  # the server dies with the call in flight
        if MODE == "tool_error":
            message = f"Error executing tool lookup_order: order {order_id} not found"
            return {"content": [{"type": "text", "text": message}], "isError": True}
        return {"content": [{"type": "text", "text": f"Order {order_id}: shipped"}]}
    if method == "ping":
        return {}
    raise LookupError(f"method not found: {method}")


def main() -> None:
    """Serve requests from stdin until it closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        if "id" not in message or "method" not in message:
            continue  # a notification (initialized, cancelled) or a response: nothing to say
        try:
            reply = {"result": answer(message["method"], message.get("params") or {})}
        except LookupError as exc:
            reply = {"error": {"code": -32603, "message": str(exc)}}
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], **reply}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
