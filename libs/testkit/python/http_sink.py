"""A real HTTP provider endpoint for notification's tests. Records every POST as one JSON
line in OUT_DIR/requests.jsonl: {"path", "status", "headers", "body", "key", "replay"}.

  /permanent/...  always answers 400 (a permanent error)
  anything else   answers 500 to the first FAIL_FIRST requests, then as OUT_DIR/mode says
                  (200 when there is no such file)

OUT_DIR/mode, read at every request, lets a test change how the provider misbehaves:
  ok     200 {"message_id": ...}
  error  500
  slow   takes the message, then answers 200 only after SLOW seconds (longer than the
         caller's timeout: the caller sees a timeout for a message the provider has)
  hang   reads the request and never answers (nor takes the message)

Like a real provider, it honours the Idempotency-Key header: a message taken once under a
key is not taken again; a repeat gets the first answer and is recorded with "replay": true.

The port it listens on is written to OUT_DIR/port; PORT (optional) asks for a given one, so
a test can stop the provider and bring it back at the same address.

usage: python http_sink.py OUT_DIR FAIL_FIRST [PORT]
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUT = sys.argv[1]
FAIL_FIRST = int(sys.argv[2])
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 0
SLOW = 2.0
LOCK = threading.Lock()
COUNT = {"n": 0}
TAKEN = {}


def taken_before():
    """Keys taken by an earlier run of this sink (the test may restart it)."""
    try:
        with open(os.path.join(OUT, "requests.jsonl"), encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r["status"] == 200 and r["key"] and not r["replay"]:
                    TAKEN[r["key"]] = r["answer"]
                COUNT["n"] += 1
    except FileNotFoundError:
        pass


def mode():
    try:
        with open(os.path.join(OUT, "mode"), encoding="utf-8") as f:
            return f.read().strip() or "ok"
    except FileNotFoundError:
        return "ok"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode("utf-8")
        key = self.headers.get("idempotency-key", "")
        how = mode()
        if how == "hang" and not self.path.startswith("/permanent"):
            time.sleep(3600)
            return
        with LOCK:
            COUNT["n"] += 1
            n = COUNT["n"]
            replay = False
            if self.path.startswith("/permanent"):
                status = 400
            elif n <= FAIL_FIRST or how == "error":
                status = 500
            else:
                status = 200
            answer = {"error": status}
            if status == 200:
                if key and key in TAKEN:
                    replay = True
                    answer = TAKEN[key]
                else:
                    answer = {"message_id": f"sink-{n}"}
                    if key:
                        TAKEN[key] = answer
            with open(os.path.join(OUT, "requests.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps({
                    "path": self.path,
                    "status": status,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "key": key,
                    "replay": replay,
                    "mode": how,
                    "answer": answer,
                }, ensure_ascii=False) + "\n")
        if how == "slow":
            time.sleep(SLOW)
        reply = json.dumps(answer)
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply.encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up first (slow)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


taken_before()
server = Server(("127.0.0.1", PORT), Handler)
with open(os.path.join(OUT, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(OUT, "port.tmp"), os.path.join(OUT, "port"))
server.serve_forever()
