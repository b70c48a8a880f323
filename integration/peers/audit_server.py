"""The demo MCP server (official Python SDK) plus one tool, `seen_traceparent`, that answers
with the `traceparent` header its HTTP request carried: what the upstream received."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from mcp.server.mcpserver import Context  # noqa: E402
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402

from demo_server import build  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="demo")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--stateless", action="store_true")
    args = ap.parse_args()
    server = build(args.name)

    @server.tool()
    def seen_traceparent(ctx: Context) -> str:
        """The traceparent header of this request as the server received it ("" if none)."""
        request = ctx.request_context.request
        return request.headers.get("traceparent", "") if request is not None else ""

    server.run(
        "streamable-http",
        host="127.0.0.1",
        port=args.port,
        json_response=args.json,
        stateless_http=args.stateless,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


if __name__ == "__main__":
    main()
