"""A real HTTP provider endpoint for notification's tests. Records every POST as one JSON
line in OUT_DIR/requests.jsonl: {"path", "status", "headers", "body"}.

  /permanent/...  always answers 400 (a permanent error)
  anything else   answers 500 to the first FAIL_FIRST requests, then 200 {"message_id": ...}

The port it listens on is written to OUT_DIR/port.

usage: python http_sink.py OUT_DIR FAIL_FIRST
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUT = sys.argv[1]
FAIL_FIRST = int(sys.argv[2])
LOCK = threading.Lock()
COUNT = {"n": 0}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode("utf-8")
        with LOCK:
            COUNT["n"] += 1
            n = COUNT["n"]
            if self.path.startswith("/permanent"):
                status = 400
            elif n <= FAIL_FIRST:
                status = 500
            else:
                status = 200
            with open(os.path.join(OUT, "requests.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps({
                    "path": self.path,
                    "status": status,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }, ensure_ascii=False) + "\n")
        reply = json.dumps({"message_id": f"sink-{n}"} if status == 200 else {"error": status})
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(OUT, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(OUT, "port.tmp"), os.path.join(OUT, "port"))
server.serve_forever()
