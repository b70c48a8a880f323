//! MCP 2026-07-28 request headers checked against the body.
