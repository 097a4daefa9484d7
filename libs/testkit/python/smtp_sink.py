"""A real SMTP server for notification's tests (aiosmtpd). Every accepted message is written
to OUT_DIR as NNNNN.json: envelope sender and recipients, the decoded From, To, Subject,
text body (the text/plain part of a multipart/alternative mail), the HTML part (or null) and
the raw message; recipients whose local part starts with "bounce" are refused with a
permanent 550, and those starting with "greylist" with a temporary 451 the first two times. The port it listens on is written to OUT_DIR/port once it accepts mail; PORT (optional) asks
for a given one, so a test can stop the server and bring it back at the same address.

usage: python smtp_sink.py OUT_DIR [PORT]
"""
import email
import email.policy
import json
import os
import socket
import sys
import threading
import time

from aiosmtpd.controller import Controller

OUT = sys.argv[1]
LOCK = threading.Lock()
GREYLIST = {}


class Sink:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("bounce"):
            return "550 5.1.1 no such mailbox"
        if local.startswith("greylist"):
            with LOCK:
                GREYLIST[address] = GREYLIST.get(address, 0) + 1
                if GREYLIST[address] <= 2:
                    return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with LOCK:
            n = len([f for f in os.listdir(OUT) if f.endswith(".json")])
            raw = envelope.original_content or envelope.content
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            # A multipart/alternative mail: body is its text/plain part, html its text/html
            # part; a single-part mail: body is its content (html set if it is HTML).
            plain = msg.get_body(preferencelist=("plain",))
            html = msg.get_body(preferencelist=("html",))
            text = plain if plain is not None else html if html is not None else msg
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "from": str(msg["From"]),
                "to": str(msg["To"]),
                "subject": str(msg["Subject"]),
                "message_id": str(msg["Message-ID"]),
                "body": text.get_content(),
                "html": html.get_content() if html is not None else None,
                "raw": raw.decode("utf-8", "replace"),
            }
            tmp = os.path.join(OUT, f"{n:05d}.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(record, f, ensure_ascii=False)
            os.rename(tmp, os.path.join(OUT, f"{n:05d}.json"))
        return "250 OK"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


port = int(sys.argv[2]) if len(sys.argv) > 2 else free_port()
controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
with open(os.path.join(OUT, "port.tmp"), "w") as f:
    f.write(str(port))
os.rename(os.path.join(OUT, "port.tmp"), os.path.join(OUT, "port"))
while True:
    time.sleep(3600)
