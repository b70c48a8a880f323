"""A real MCP server (official Python SDK) for the demo and the integration tests.

Serves Streamable HTTP on 127.0.0.1 only. `--json` answers with application/json bodies;
without it, responses are text/event-stream (SSE). `--stateless` runs without sessions.
A few tools, resources and prompts give policy something to work with.
"""

import argparse

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings


def build(name: str) -> MCPServer:
    server = MCPServer(name)

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def search_repos(repo: str, query: str, limit: int = 10) -> str:
        """Search a repository (canned answer)."""
        return f"{min(limit, 100)} results for {query!r} in {repo}"

    @server.tool()
    def delete_branch(repo: str, branch: str) -> str:
        """Delete a branch (pretend)."""
        return f"deleted {branch} in {repo}"

    @server.resource("docs://readme")
    def readme() -> str:
        """The public readme."""
        return "hello from the demo server"

    @server.resource("secrets://prod/db-password")
    def secret() -> str:
        """A secret nobody should read through the gateway without rights."""
        return "hunter2"

    @server.prompt()
    def review(code: str) -> str:
        """Ask for a code review."""
        return f"Please review:\n{code}"

    @server.prompt()
    def admin_report() -> str:
        """An admin-only prompt."""
        return "Summarise the audit log."

    return server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="demo")
    ap.add_argument("--json", action="store_true", help="answer with application/json instead of SSE")
    ap.add_argument("--stateless", action="store_true")
    args = ap.parse_args()
    build(args.name).run(
        "streamable-http",
        host="127.0.0.1",
        port=args.port,
        json_response=args.json,
        stateless_http=args.stateless,
        # The gateway in front checks Host/Origin; behind it the Host is the gateway's.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


if __name__ == "__main__":
    main()
