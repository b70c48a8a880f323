// A real MCP client (the official TypeScript SDK) that runs a plan of operations, each with a
// 10 s timeout, so a gateway that swallows an answer fails the test fast instead of hanging it.
//
//   node everything_client.mjs URL PLAN_JSON [--header 'Name: value']...
//
// PLAN_JSON is an array of {"op": "tools" | "prompts" | "resources" | "templates"} (list names,
// URIs or URI templates), {"op": "call", "name", "args"}, {"op": "read", "uri"},
// {"op": "prompt", "name", "args"}. Prints one JSON line: {"results": [{"op", "ok": true,
// "value"} | {"op", "ok": false, "error": {"code", "message"}} | {"op", "ok": false,
// "skipped"}]}, or {"connect_error"} and exits 1. The whole run is killed after 60 s (exit 2).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const TIMEOUT = { timeout: 10_000 };
const args = process.argv.slice(2);
const url = args.shift();
const plan = JSON.parse(args.shift());
const headers = {};
while (args.length) {
  const a = args.shift();
  if (a !== "--header") throw new Error(`unknown argument ${a}`);
  const [k, ...v] = args.shift().split(":");
  headers[k.trim()] = v.join(":").trim();
}
setTimeout(() => {
  console.log(JSON.stringify({ killed: "the whole plan took more than 60 s" }));
  process.exit(2);
}, 60_000).unref();

const ops = {
  tools: async (c) => (await c.listTools(undefined, TIMEOUT)).tools.map((t) => t.name),
  prompts: async (c) => (await c.listPrompts(undefined, TIMEOUT)).prompts.map((p) => p.name),
  resources: async (c) => (await c.listResources(undefined, TIMEOUT)).resources.map((r) => r.uri),
  templates: async (c) => (await c.listResourceTemplates(undefined, TIMEOUT)).resourceTemplates.map((t) => t.uriTemplate),
  call: async (c, op) => {
    const r = await c.callTool({ name: op.name, arguments: op.args ?? {} }, undefined, TIMEOUT);
    return { isError: !!r.isError, text: r.content?.[0]?.text };
  },
  read: async (c, op) => (await c.readResource({ uri: op.uri }, TIMEOUT)).contents.map((x) => ({ uri: x.uri, text: x.text })),
  prompt: async (c, op) => (await c.getPrompt({ name: op.name, arguments: op.args ?? {} }, TIMEOUT)).messages.map((m) => m.content?.text),
};

const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const client = new Client({ name: "mcp-policy-everything-client", version: "1.0.0" });
try {
  await client.connect(transport, TIMEOUT);
} catch (e) {
  console.log(JSON.stringify({ connect_error: String(e?.message ?? e) }));
  process.exit(1);
}
// After a request times out (-32001) the rest of the plan is skipped: a gateway that swallowed
// one answer will swallow the next, and the test should fail in 10 s, not 10 s per request.
const results = [];
let timedOut = false;
for (const op of plan) {
  if (timedOut) {
    results.push({ op: op.op, ok: false, skipped: "an earlier request timed out" });
    continue;
  }
  try {
    results.push({ op: op.op, ok: true, value: await ops[op.op](client, op) });
  } catch (e) {
    results.push({ op: op.op, ok: false, error: { code: e.code, message: String(e.message) } });
    timedOut = e.code === -32001;
  }
}
try {
  await Promise.race([client.close(), new Promise((r) => setTimeout(r, 5_000))]);
} catch {
  // closing is best effort: the results are already in
}
console.log(JSON.stringify({ results }));
process.exit(0);
