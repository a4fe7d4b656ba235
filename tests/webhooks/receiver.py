"""A webhook receiver for the end-to-end tests: verifies every delivery with the
`standardwebhooks` package (PyPI), the Standard Webhooks reference library, and answers
what the test asks for.

    python receiver.py            # prints "listening on http://127.0.0.1:PORT", then serves

POST /config   {"secrets": ["whsec_…"], "answers": [500, 500, 410]}  secrets to verify with;
               statuses to answer, one per delivery, then 204 (a 429/503 carries Retry-After: 7)
POST /hook     a delivery: verified against each secret; recorded
GET  /received every delivery so far: webhook-id, verified by which secrets, status answered, body
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

state = {"secrets": [], "answers": [], "received": []}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with lock:
            self.reply(200, state["received"])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/config":
            config = json.loads(body)
            with lock:
                state["secrets"] = config.get("secrets", [])
                state["answers"] = config.get("answers", [])
            return self.reply(204)
        headers = {name.lower(): value for name, value in self.headers.items()}
        verified = []
        with lock:
            secrets = list(state["secrets"])
        for secret in secrets:
            try:
                Webhook(secret).verify(body, headers)
                verified.append(secret)
            except WebhookVerificationError:
                pass
        with lock:
            status = state["answers"].pop(0) if state["answers"] else 204
            state["received"].append(
                {
                    "webhook_id": headers.get("webhook-id"),
                    "verified_with": verified,
                    "answered": status,
                    "body": json.loads(body) if body else None,
                }
            )
        extra = [("retry-after", "7")] if status in (429, 503) else []
        self.reply(status, None, extra)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
