"""A lenient MCP client's view of a response: raw HTTP/1.1 on a socket, then parsed the way the
most forgiving real client would (so a test can prove nothing it could read leaks).

- HTTP: chunked or content-length or read-to-close; trailers kept; a reset or a truncated body
  is reported, not raised.
- `content-encoding: gzip` is decoded (partial data too).
- SSE: a WHATWG-conformant parser (CR, LF and CRLF line ends, a leading BOM stripped, comments,
  `retry`, `id`, multi-line `data`, dispatch on a blank line), optionally also dispatching an
  event left pending at end of stream, as some clients do.
- JSON: `json.loads` of the body, else of each line (NDJSON, json-seq with RS stripped); the
  media type is matched case-insensitively; a body that is not SSE by media type but parses as
  SSE is read as SSE too (clients that sniff).
"""

from __future__ import annotations

import json
import re
import socket
import time
import zlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Wire:
    raw: bytes = b""
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""  # after de-chunking and content decoding
    trailers: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = False  # the framing said the body ended (last chunk, content-length, clean close)
    reset: bool = False
    timed_out: bool = False

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()


def exchange(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"", timeout: float = 10.0) -> Wire:
    """Send one request on a fresh connection (`connection: close`) and read until the server
    closes, resets, or `timeout` seconds pass in total."""
    w = Wire()
    head = f"{method} {path} HTTP/1.1\r\n"
    hs = {"host": f"127.0.0.1:{port}", "connection": "close", **headers}
    if body or method in ("POST", "PUT", "PATCH"):
        hs["content-length"] = str(len(body))
    for k, v in hs.items():
        head += f"{k}: {v}\r\n"
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode("latin-1") + b"\r\n" + body)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                w.timed_out = True
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                w.timed_out = True
                break
            except ConnectionResetError:
                w.reset = True
                break
            if not chunk:
                break
            w.raw += chunk
    _parse_http(w)
    return w


def _parse_http(w: Wire) -> None:
    end = w.raw.find(b"\r\n\r\n")
    if end < 0:
        return
    lines = w.raw[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    w.status = int(parts[1])
    for line in lines[1:]:
        k, _, v = line.partition(":")
        w.headers.append((k.strip().lower(), v.strip()))
    rest = w.raw[end + 4:]
    if w.status in (204, 304) or 100 <= w.status < 200:
        w.complete = True
        body = b""
    elif "chunked" in (w.header("transfer-encoding") or "").lower():
        body, w.complete, w.trailers = _dechunk(rest)
    elif w.header("content-length") is not None:
        n = int(w.header("content-length"))
        body = rest[:n]
        w.complete = len(rest) >= n
    else:
        body = rest
        w.complete = not (w.reset or w.timed_out)
    if (w.header("content-encoding") or "").strip().lower() in ("gzip", "x-gzip"):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = d.decompress(body)
        except zlib.error:
            pass
    w.body = body


def _dechunk(data: bytes) -> tuple[bytes, bool, list[tuple[str, str]]]:
    out = b""
    i = 0
    while True:
        j = data.find(b"\r\n", i)
        if j < 0:
            return out, False, []
        size = int(data[i:j].split(b";")[0].strip() or b"0", 16)
        i = j + 2
        if size == 0:
            trailers = []
            while True:
                j = data.find(b"\r\n", i)
                if j < 0:
                    return out, False, trailers
                line = data[i:j].decode("latin-1")
                i = j + 2
                if not line:
                    return out, True, trailers
                k, _, v = line.partition(":")
                trailers.append((k.strip().lower(), v.strip()))
        out += data[i:i + size]
        if len(data) < i + size + 2:
            return out, False, []
        i += size + 2


@dataclass
class Event:
    type: str
    data: str
    id: str
    retry: int | None


def parse_sse(text: str, dispatch_at_eof: bool = False) -> tuple[list[Event], list[tuple[str, bool]]]:
    """WHATWG event-stream parsing. Returns (events, comments); each comment is (line, whether it
    sat inside an event's block of fields rather than in a block of its own)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)
    tail = lines.pop()  # after the last line terminator: an unterminated line
    if dispatch_at_eof and tail:
        lines.append(tail)
    if dispatch_at_eof:
        lines.append("")
    events, comments = [], []
    data, etype, last_id, retry = "", "", "", None
    block: list[str] = []  # the current block's lines, to tell a lone comment from one inside an event
    pending: list[int] = []
    for line in lines:
        if line == "":
            if data:
                events.append(Event(etype or "message", data[:-1] if data.endswith("\n") else data, last_id, retry))
            inside = any(not x.startswith(":") for x in block)
            for i in pending:
                comments[i] = (comments[i][0], inside)
            data, etype, block, pending = "", "", [], []
            continue
        block.append(line)
        if line.startswith(":"):
            pending.append(len(comments))
            comments.append((line, False))
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data += value + "\n"
        elif name == "event":
            etype = value
        elif name == "id":
            if "\0" not in value:
                last_id = value
        elif name == "retry":
            if value.isdigit():
                retry = int(value)
    return events, comments


def json_messages(text: str) -> list[Any]:
    """Every JSON-RPC message a lenient client could read from `text` (arrays flattened)."""
    text = text.lstrip("\ufeff")
    found: list[Any] = []
    try:
        found.append(json.loads(text.replace("\x1e", "")))
    except ValueError:
        for line in re.split(r"\r\n|\r|\n", text):
            line = line.strip().lstrip("\x1e")
            if line:
                try:
                    found.append(json.loads(line))
                except ValueError:
                    pass
    out = []
    for m in found:
        out.extend(m if isinstance(m, list) else [m])
    return out


def messages(w: Wire) -> list[Any]:
    """What a lenient client reads from the response, whatever it says it is."""
    text = w.body.decode("utf-8", "replace")
    if w.media_type == "text/event-stream":
        return sse_messages(text)
    msgs = json_messages(text)
    return msgs if msgs else sse_messages(text)


def sse_messages(text: str) -> list[Any]:
    events, _ = parse_sse(text, dispatch_at_eof=True)
    out = []
    for e in events:
        out.extend(json_messages(e.data) if e.data else [])
    return out
