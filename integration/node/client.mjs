// A real MCP client (the official TypeScript SDK) for the integration suite.
//
//   node client.mjs URL [--header 'Name: value']... [--list] [--call TOOL JSON_ARGS]...
//
// Prints one JSON object: {"tools": [...names], "resources": [...uris], "prompts": [...names],
// "calls": [{"tool", "ok", "text" | "error": {"code", "message"}}]}. Exits 1 on connect failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const args = process.argv.slice(2);
const url = args.shift();
const headers = {};
const ops = [];
while (args.length) {
  const a = args.shift();
  if (a === "--header") {
    const [k, ...v] = args.shift().split(":");
    headers[k.trim()] = v.join(":").trim();
  } else if (a === "--list") {
    ops.push({ op: "list" });
  } else if (a === "--call") {
    ops.push({ op: "call", tool: args.shift(), args: JSON.parse(args.shift()) });
  } else {
    throw new Error(`unknown argument ${a}`);
  }
}

const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const client = new Client({ name: "mcp-policy-ts-client", version: "1.0.0" });
const out = { calls: [] };
try {
  await client.connect(transport);
} catch (e) {
  console.log(JSON.stringify({ connect_error: String(e && e.message ? e.message : e) }));
  process.exit(1);
}
for (const op of ops) {
  if (op.op === "list") {
    out.tools = (await client.listTools()).tools.map((t) => t.name);
    out.resources = (await client.listResources()).resources.map((r) => r.uri);
    out.prompts = (await client.listPrompts()).prompts.map((p) => p.name);
  } else {
    try {
      const r = await client.callTool({ name: op.tool, arguments: op.args });
      out.calls.push({ tool: op.tool, ok: !r.isError, text: r.content?.[0]?.text });
    } catch (e) {
      out.calls.push({ tool: op.tool, ok: false, error: { code: e.code, message: e.message } });
    }
  }
}
await client.close();
console.log(JSON.stringify(out));
