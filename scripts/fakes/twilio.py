#!/usr/bin/env python3
"""A Twilio-compatible Messages API for local runs (schemathesis in CI): answers
`POST /2010-04-01/Accounts/{sid}/Messages.json` as Twilio does (201 with a message resource)
after checking basic auth and the form fields. It keeps nothing and logs no message content.

    twilio.py PORT ACCOUNT_SID AUTH_TOKEN
"""
import base64
import json
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

PORT, SID, TOKEN = int(sys.argv[1]), sys.argv[2], sys.argv[3]
EXPECTED_AUTH = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # no message content, no numbers
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if self.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
            return self.reply(404, {"code": 20404, "message": "not found", "status": 404})
        if self.headers.get("Authorization") != EXPECTED_AUTH:
            return self.reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
        if not all(form.get(k) for k in ("To", "From", "Body")):
            return self.reply(400, {"code": 21604, "message": "missing field", "status": 400})
        self.reply(201, {"sid": "SM" + uuid.uuid4().hex, "status": "queued"})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
