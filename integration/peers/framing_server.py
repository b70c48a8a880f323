"""A hostile/odd MCP upstream that answers in every framing a real server (or a broken one) might use.

Raw HTTP/1.1 on asyncio streams, no framework, so every byte on the wire is the one written
here. Binds 127.0.0.1 on a port the OS picks and writes it to `--port-file`.

Any request (any method, any path) except the control paths is recorded (method, target,
headers, body) and answered with the canned response named by its `x-test-shape` header;
an unknown or missing shape gets `400 unknown shape` (so a test that forgot to name one
cannot pass by accident). Every response closes the connection.

Control (straight to the server, not through the gateway):
  GET /__control/requests   the recorded requests as JSON
  POST /__control/reset     forget them
  GET /__control/shapes     the shape names

Every tools/list answer carries two tools, `ok_tool` and `secret_tool`; the tests prove the
second never reaches a caller who may not see it, whatever the framing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
from typing import Any, Callable

TOOLS = [
    {"name": "ok_tool", "description": "a tool the caller may use", "inputSchema": {"type": "object"}},
    {"name": "secret_tool", "description": "a tool the caller must never see", "inputSchema": {"type": "object"}},
]
TOOLS_JSON = json.dumps(TOOLS, separators=(",", ":"))

RECORDED: list[dict[str, Any]] = []


def list_result(rid_json: str, extra: str = "") -> str:
    """A tools/list response with the id as raw JSON text (so `7.0` stays `7.0`)."""
    return '{"jsonrpc":"2.0","id":' + rid_json + ',"result":{"tools":' + TOOLS_JSON + "}" + extra + "}"


class Req:
    def __init__(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes):
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def rid(self) -> str:
        """The request's JSON-RPC id as JSON text (`null` when there is none)."""
        try:
            msg = json.loads(self.body)
        except ValueError:
            return "null"
        if isinstance(msg, dict) and "id" in msg:
            return json.dumps(msg["id"])
        return "null"

    def wants_gzip(self) -> bool:
        ae = (self.header("accept-encoding") or "").lower()
        for part in ae.split(","):
            token, _, params = part.strip().partition(";")
            if token.strip() in ("gzip", "*") and params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
                return True
        return False


# A response: status line + headers, then body pieces. `chunked=True` frames the pieces as
# HTTP/1.1 chunks (one chunk per piece, written separately, so the gateway sees them arrive
# one by one); otherwise the pieces are joined under a content-length.
class Resp:
    def __init__(self, status: str, headers: list[tuple[str, str]], pieces: list[bytes], chunked: bool = False,
                 trailers: list[tuple[str, str]] | None = None):
        self.status = status
        self.headers = headers
        self.pieces = pieces
        self.chunked = chunked
        self.trailers = trailers or []


def sse(events: list[str], content_type: str = "text/event-stream") -> Resp:
    return Resp("200 OK", [("content-type", content_type), ("cache-control", "no-cache")], [e.encode() for e in events], chunked=True)


def js(body: str, content_type: str | None = "application/json", status: str = "200 OK") -> Resp:
    headers = [("content-type", content_type)] if content_type is not None else []
    return Resp(status, headers, [body.encode()])


def gzipped(r: Resp) -> Resp:
    data = gzip.compress(b"".join(r.pieces))
    return Resp(r.status, r.headers + [("content-encoding", "gzip")], [data], chunked=r.chunked)


def split_list(rid: str) -> tuple[str, str]:
    """The list answer cut in two at a comma between members (so joining with LF is valid JSON)."""
    full = list_result(rid)
    cut = full.index(',"result"') + 1
    return full[:cut], full[cut:]


SHAPES: dict[str, Callable[[Req], Resp]] = {
    # --- SSE, valid ---
    "sse_lf": lambda r: sse(["event: message\ndata: " + list_result(r.rid()) + "\n\n"]),
    "sse_crlf": lambda r: sse(["event: message\r\ndata: " + list_result(r.rid()) + "\r\n\r\n"]),
    "sse_cr": lambda r: sse(["event: message\rdata: " + list_result(r.rid()) + "\r\r"]),
    # What @modelcontextprotocol/server-everything sends for 2025-11-25: a priming event (id and
    # an empty data line, no event type), then the answer with its own id.
    "sse_priming_event": lambda r: sse([
        "id: 0f6e1c2a-prime\ndata: \n\n",
        "event: message\nid: 0f6e1c2a-answer\ndata: " + list_result(r.rid()) + "\n\n",
    ]),
    "sse_comments_retry_ids": lambda r: sse([
        ": ping\n\n",
        "retry: 1000\n\n",
        ": keep-alive\nevent: message\nid: 42\ndata: " + list_result(r.rid()) + "\n\n",
        ": bye\n\n",
    ]),
    "sse_multiline_data": lambda r: sse(["event: message\ndata: " + split_list(r.rid())[0] + "\ndata: " + split_list(r.rid())[1] + "\n\n"]),
    "sse_bom": lambda r: sse(["\ufeffevent: message\ndata: " + list_result(r.rid()) + "\n\n"]),
    "sse_uppercase_media_type": lambda r: sse(["event: message\ndata: " + list_result(r.rid()) + "\n\n"], content_type="TEXT/EVENT-STREAM"),
    "sse_no_space_after_colon": lambda r: sse(["event:message\nid:7\ndata:" + list_result(r.rid()) + "\n\n"]),
    # One event cut mid-JSON across two chunks (and so, usually, two reads by the gateway).
    "sse_split_across_chunks": lambda r: sse([
        "event: message\ndata: " + list_result(r.rid())[:60], list_result(r.rid())[60:] + "\n\n",
    ]),
    # A progress notification and a server-to-client request before the answer: both pass as is.
    "sse_notification_and_request_first": lambda r: sse([
        'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":0.5}}\n\n',
        'event: message\ndata: {"jsonrpc":"2.0","id":"srv-1","method":"roots/list"}\n\n',
        "event: message\ndata: " + list_result(r.rid()) + "\n\n",
    ]),
    # --- SSE, odd: the answer under an event type SDK clients ignore (a lenient one may not) ---
    "sse_custom_event_type": lambda r: sse(["event: result\ndata: " + list_result(r.rid()) + "\n\n"]),
    # --- SSE, incomplete: the answer's final blank line never comes (a WHATWG parser drops it) ---
    "sse_no_final_blank_line": lambda r: sse(["event: message\ndata: " + list_result(r.rid()) + "\n"]),
    # --- JSON and media types ---
    "json_plain": lambda r: js(list_result(r.rid())),
    "json_mixed_case_media_type": lambda r: js(list_result(r.rid()), "Application/JSON; charset=utf-8"),
    "json_missing_content_type": lambda r: js(list_result(r.rid()), None),
    "json_seq": lambda r: js("\x1e" + list_result(r.rid()) + "\n", "application/json-seq"),
    "ndjson": lambda r: js(list_result(r.rid()) + "\n", "application/x-ndjson"),
    "text_plain": lambda r: js(list_result(r.rid()), "text/plain"),
    "json_status_201": lambda r: js(list_result(r.rid()), status="201 Created"),
    "json_status_202_with_list": lambda r: js(list_result(r.rid()), status="202 Accepted"),
    "json_status_400_with_list": lambda r: js(list_result(r.rid()), status="400 Bad Request"),
    "json_status_500_with_list": lambda r: js(list_result(r.rid()), status="500 Internal Server Error"),
    "json_error_answer": lambda r: js('{"jsonrpc":"2.0","id":' + r.rid() + ',"error":{"code":-32603,"message":"no list today"}}'),
    # --- content-encoding: gzip only when the request allows it, or always ---
    "json_gzip_when_accepted": lambda r: gzipped(js(list_result(r.rid()))) if r.wants_gzip() else js(list_result(r.rid())),
    "sse_gzip_when_accepted": lambda r: (gzipped if r.wants_gzip() else (lambda x: x))(sse(["event: message\ndata: " + list_result(r.rid()) + "\n\n"])),
    "json_gzip_always": lambda r: gzipped(js(list_result(r.rid()))),
    "sse_gzip_always": lambda r: gzipped(sse(["event: message\ndata: " + list_result(r.rid()) + "\n\n"])),
    # --- chunked JSON followed by HTTP/1.1 trailers ---
    "json_chunked_with_trailers": lambda r: Resp(
        "200 OK", [("content-type", "application/json"), ("trailer", "x-upstream-checksum")],
        [p.encode() for p in split_list(r.rid())], chunked=True, trailers=[("x-upstream-checksum", "c0ffee")],
    ),
    # --- single answers whose id is not the request's ---
    "json_id_rerendered_as_float": lambda r: js(list_result(r.rid() + ".0")),
    "json_unrequested_id": lambda r: js(list_result("99")),
    # --- batch answers to [{"id":7,…tools/list}, {"id":"a\u0062",…tools/list}] ---
    "batch_echoes_ids": lambda r: js("[" + list_result("7") + "," + list_result('"ab"') + "]"),
    "batch_id_7_0": lambda r: js("[" + list_result("7.0") + "," + list_result('"ab"') + "]"),
    "batch_id_7e0": lambda r: js("[" + list_result("7e0") + "," + list_result('"ab"') + "]"),
    "batch_unrequested_id": lambda r: js("[" + list_result("7") + "," + list_result('"ab"') + "," + list_result("99") + "]"),
    "batch_element_without_jsonrpc": lambda r: js("[" + list_result("7") + ',{"id":"ab","result":{"tools":' + TOOLS_JSON + "}}]"),
    "batch_element_with_result_and_error": lambda r: js(
        "[" + list_result("7") + "," + list_result('"ab"', ',"error":{"code":-32000,"message":"both"}') + "]"
    ),
    # --- anything: a plain JSON-RPC answer (for requests that should never get here) ---
    "ack": lambda r: js('{"jsonrpc":"2.0","id":' + r.rid() + ',"result":{}}'),
}


async def read_request(reader: asyncio.StreamReader) -> Req | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers.append((k.strip().lower(), v.strip()))
    h = dict(headers)
    body = b""
    if "chunked" in h.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    elif "content-length" in h:
        body = await reader.readexactly(int(h["content-length"]))
    return Req(method, target, headers, body)


async def write_response(writer: asyncio.StreamWriter, r: Resp) -> None:
    head = f"HTTP/1.1 {r.status}\r\n"
    for k, v in r.headers:
        head += f"{k}: {v}\r\n"
    if r.chunked:
        head += "transfer-encoding: chunked\r\n"
    else:
        head += f"content-length: {sum(len(p) for p in r.pieces)}\r\n"
    head += "connection: close\r\n\r\n"
    writer.write(head.encode("latin-1"))
    await writer.drain()
    if not r.chunked:
        writer.write(b"".join(r.pieces))
    else:
        for p in r.pieces:
            writer.write(f"{len(p):x}\r\n".encode() + p + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.005)  # let each chunk travel on its own
        writer.write(b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in r.trailers) + b"\r\n")
    await writer.drain()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        req = await read_request(reader)
        if req is None:
            return
        if req.target.startswith("/__control/"):
            what = req.target[len("/__control/"):]
            if what == "requests":
                resp = js(json.dumps(RECORDED))
            elif what == "reset":
                RECORDED.clear()
                resp = js("{}")
            elif what == "shapes":
                resp = js(json.dumps(sorted(SHAPES)))
            else:
                resp = js('{"error":"unknown control"}', status="404 Not Found")
        else:
            RECORDED.append({
                "method": req.method, "target": req.target, "headers": req.headers,
                "body": req.body.decode("utf-8", "replace"),
            })
            shape = SHAPES.get(req.header("x-test-shape") or "")
            resp = shape(req) if shape else js(f'{{"error":"unknown shape {req.header("x-test-shape")!r}"}}', status="400 Bad Request")
        await write_response(writer, resp)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, args.port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
