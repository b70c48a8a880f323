// A real MCP server (the official TypeScript SDK) for the integration suite: stateless,
// answering with application/json, listening on 127.0.0.1 only.
//
//   node server.mjs PORT [NAME]
import http from "node:http";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

const port = Number(process.argv[2]);
const name = process.argv[3] || "ts-demo";

function build() {
  const server = new McpServer({ name, version: "1.0.0" });
  server.registerTool("echo", { description: "Return the text", inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: "text", text }],
  }));
  server.registerTool("list_issues", { description: "List issues", inputSchema: { repo: z.string(), limit: z.number().optional() } },
    async ({ repo, limit }) => ({ content: [{ type: "text", text: `${limit ?? 10} issues in ${repo}` }] }));
  server.registerTool("create_issue", { description: "Create an issue", inputSchema: { repo: z.string(), title: z.string() } },
    async ({ repo, title }) => ({ content: [{ type: "text", text: `created ${title} in ${repo}` }] }));
  server.registerTool("drop_database", { description: "Drop a database", inputSchema: { db: z.string() } },
    async ({ db }) => ({ content: [{ type: "text", text: `dropped ${db}` }] }));
  server.registerResource("handbook", "docs://handbook", { description: "The handbook" }, async (uri) => ({
    contents: [{ uri: uri.href, text: "be kind" }],
  }));
  server.registerResource("payroll", "hr://payroll/2026", { description: "Payroll data" }, async (uri) => ({
    contents: [{ uri: uri.href, text: "confidential" }],
  }));
  server.registerResource("repo-file", new ResourceTemplate("repo://{owner}/{name}/README", { list: undefined }), { description: "A repo readme" },
    async (uri) => ({ contents: [{ uri: uri.href, text: "readme" }] }));
  server.registerPrompt("summarize", { description: "Summarize text", argsSchema: { text: z.string() } }, ({ text }) => ({
    messages: [{ role: "user", content: { type: "text", text: `Summarize: ${text}` } }],
  }));
  server.registerPrompt("incident_review", { description: "Admin-only incident review" }, () => ({
    messages: [{ role: "user", content: { type: "text", text: "Review the incident." } }],
  }));
  return server;
}

const httpServer = http.createServer(async (req, res) => {
  if (!req.url.startsWith("/mcp")) {
    res.writeHead(404).end();
    return;
  }
  let body;
  if (req.method === "POST") {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      res.writeHead(400, { "content-type": "application/json" })
        .end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } }));
      return;
    }
  }
  // Stateless: a fresh server and transport per request.
  const server = build();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on("close", () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
});
httpServer.listen(port, "127.0.0.1", () => console.log(`ts MCP server ${name} on 127.0.0.1:${port}`));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => httpServer.close(() => process.exit(0)));
