#!/usr/bin/env python3
"""A tiny Segment-style tracking endpoint that records what SDKs send (development aid).

    python3 capture_server.py OUT.jsonl [--port 0] [--statuses 503,200] [--port-file FILE]
                              [--error-body JSON] [--retry-after SECONDS]

Listens on 127.0.0.1 (port 0 = any free port; the chosen port is printed as `PORT <n>` on stdout
and written to --port-file), answers every POST with 200 {"success":true} -- or, with --statuses,
the listed statuses in order (the last one repeats), non-2xx ones with --error-body (default
{"code":"test","message":"injected status"}) and, if given, a Retry-After header -- and appends one JSON line per request to
OUT.jsonl: time, method, path, query, headers (as received, in order), status answered, the raw
body in base64, and the decoded JSON body (gunzipped first when Content-Encoding is gzip, or when
the bytes start with the gzip magic whatever the headers say). It serves until killed.
Standard library only.
"""

import argparse
import base64
import gzip
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--statuses", default="200")
    ap.add_argument("--port-file")
    ap.add_argument("--error-body", default='{"code":"test","message":"injected status"}')
    ap.add_argument("--retry-after")
    args = ap.parse_args()
    statuses = [int(s) for s in args.statuses.split(",")]
    lock = threading.Lock()
    counter = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not length and self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                raw = self._read_chunked()
            with lock:
                i = counter["n"]
                counter["n"] += 1
            status = statuses[min(i, len(statuses) - 1)]
            gzipped = raw[:2] == b"\x1f\x8b"
            decoded = None
            try:
                text = gzip.decompress(raw) if gzipped else raw
                decoded = json.loads(text) if text else None
            except Exception as e:  # keep the raw bytes, say why
                decoded = {"_undecodable": str(e)}
            u = urlsplit(self.path)
            rec = {
                "seq": i,
                "time": time.time(),
                "method": self.command,
                "path": u.path,
                "query": u.query,
                "headers": [[k, v] for k, v in self.headers.items()],
                "status_answered": status,
                "body_gzip_magic": gzipped,
                "body_base64": base64.b64encode(raw).decode(),
                "body": decoded,
            }
            with lock, open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            payload = b'{"success":true}' if 200 <= status < 300 else args.error_body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if args.retry_after and status >= 400:
                self.send_header("Retry-After", args.retry_after)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _read_chunked(self):
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()

        do_POST = _handle
        do_PUT = _handle

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file, "w") as f:
            f.write(str(port))
    print(f"PORT {port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
