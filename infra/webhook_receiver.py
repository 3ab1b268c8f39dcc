#!/usr/bin/env python3
"""A webhook receiver for the tests: answers POSTs with the statuses given, in turn (the
last one repeats), checks each request's signature with the recipe printed in the
README (read from README.md and run as is, so the README cannot drift from what works),
and appends one JSON line per request to LOG: the status it answered, whether the
signature verified, the headers and the event.

usage: webhook_receiver.py PORT LOG SECRET STATUS[,STATUS...]
Prints "ready" once it listens.
"""
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
readme = open(os.path.join(ROOT, "README.md")).read()
recipe = re.search(r"<!-- webhook-verify -->\s*```python\n(.*?)```", readme, re.S)
if not recipe:
    sys.exit("README.md has no webhook verification recipe")
namespace = {}
exec(recipe.group(1), namespace)
verify = namespace["verify"]

port, log, secret, statuses = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split(",")
answered = 0


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        global answered
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        status = int(statuses[min(answered, len(statuses) - 1)])
        answered += 1
        verified = verify(secret, self.headers.get("labelport-signature", ""), body)
        with open(log, "a") as f:
            f.write(json.dumps({"status": status, "verified": verified, "path": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "event": json.loads(body or b"null")}) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        if 300 <= status < 400:
            self.send_header("location", "http://127.0.0.1:1/elsewhere")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", port), Receiver)
print("ready", flush=True)
server.serve_forever()
