//! The subject of an MCP request: tool name and arguments, resource URI, prompt name.
