"""Capture the clean corpus: initialize + every list from official reference MCP servers over
stdio with the Python SDK client. Run: python capture_clean.py <node_modules dir> <python venv bin> > clean.json
Each entry records the package and version it came from (provenance)."""
import asyncio, json, sys, os, tempfile, subprocess
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

NODE = sys.argv[1]
PYBIN = sys.argv[2]
tmp = tempfile.mkdtemp()
# Placeholder credentials: the servers list their tools without calling their APIs.
for k in ["SLACK_BOT_TOKEN", "SLACK_TEAM_ID", "BRAVE_API_KEY", "GITLAB_PERSONAL_ACCESS_TOKEN", "GOOGLE_MAPS_API_KEY", "GITHUB_PERSONAL_ACCESS_TOKEN"]:
    os.environ.setdefault(k, "placeholder")
subprocess.run(["git", "init", "-q", tmp], check=True)

def npm(pkg, bin_js, *args):
    ver = json.load(open(os.path.join(NODE, pkg, "package.json")))["version"]
    return (f"npm:{pkg}@{ver}", StdioServerParameters(command="node", args=[os.path.join(NODE, pkg, bin_js), *args], env=dict(os.environ)))

def pypi(dist, exe, *args):
    out = subprocess.run([os.path.join(PYBIN, "pip"), "show", dist], capture_output=True, text=True).stdout
    ver = [l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Version:")][0]
    return (f"pypi:{dist}=={ver}", StdioServerParameters(command=os.path.join(PYBIN, exe), args=list(args)))

SERVERS = [
    npm("@modelcontextprotocol/server-everything", "dist/index.js", "stdio"),
    npm("@modelcontextprotocol/server-memory", "dist/index.js"),
    npm("@modelcontextprotocol/server-filesystem", "dist/index.js", tmp),
    npm("@modelcontextprotocol/server-sequential-thinking", "dist/index.js"),
    npm("@modelcontextprotocol/server-github", "dist/index.js"),
    npm("@modelcontextprotocol/server-slack", "dist/index.js"),
    npm("@modelcontextprotocol/server-brave-search", "dist/index.js"),
    npm("@modelcontextprotocol/server-gitlab", "dist/index.js"),
    npm("@modelcontextprotocol/server-google-maps", "dist/index.js"),
    npm("@modelcontextprotocol/server-puppeteer", "dist/index.js"),
    pypi("mcp-server-fetch", "mcp-server-fetch"),
    pypi("mcp-server-time", "mcp-server-time"),
    pypi("mcp-server-git", "mcp-server-git", "--repository", tmp),
]

async def one(src, params):
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            init = await s.initialize()
            out = {"source": src, "instructions": init.instructions, "tools": [], "prompts": [], "resources": [], "resourceTemplates": []}
            caps = init.capabilities
            dump = lambda x: x.model_dump(mode="json", by_alias=True, exclude_none=True)
            if caps.tools:
                out["tools"] = [dump(t) for t in (await s.list_tools()).tools]
            if caps.prompts:
                out["prompts"] = [dump(p) for p in (await s.list_prompts()).prompts]
            if caps.resources:
                out["resources"] = [dump(x) for x in (await s.list_resources()).resources]
                out["resourceTemplates"] = [dump(x) for x in (await s.list_resource_templates()).resource_templates]
            return out

async def main():
    res = []
    for src, p in SERVERS:
        try:
            res.append(await asyncio.wait_for(one(src, p), 60))
        except Exception as e:
            print(f"{src}: {e!r}", file=sys.stderr)
    json.dump({"captured_with": "core/tests/corpus/capture_clean.py (Python mcp SDK client over stdio)", "servers": res}, sys.stdout, indent=1, ensure_ascii=False)

asyncio.run(main())
