"""An upstream that answers every JSON-RPC request with the HTTP headers it received.

Used to prove what the gateway forwards (identity headers, no client token) and what it never
forwards (spoofed identity headers). Binds 127.0.0.1 only.
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 - http.server API
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        try:
            msg = json.loads(body)
            rid = msg.get("id") if isinstance(msg, dict) else None
        except ValueError:
            rid = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        out = json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"headers": headers, "body": body.decode("utf-8", "replace")}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):  # noqa: N802
        self.send_response(405)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
