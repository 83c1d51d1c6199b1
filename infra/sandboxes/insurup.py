#!/usr/bin/env python3
"""An InsurUp stand-in for `make dev` and tooling tests (the real InsurUp is not reachable here).

Agent-user authentication as InsurUp documents it (contracts.md §3.6), with expiring access
tokens and rotating refresh tokens, the REST reads the worker uses, and a way to send any
webhook event, signed, to a local URL:

  POST /api/authentication:agent-user/login     {"email", "password"} → accessToken, refreshToken,
                                                expiresIn, requiresTwoFactor, userId (401 otherwise)
  POST /api/authentication:agent-user/refresh   {"refreshToken"} → new pair; the old refresh token
                                                stops working (rotation); 401 for an unknown one
  GET  /api/customers/{id}                      a stored customer (Bearer; 401 expired, 404 unknown)
  GET  /api/policies/{id}, /api/proposals/{id}  {"id", "insuredCustomerId", ...}
  POST /sandbox/customers|policies|proposals    store documents by "id" (a list or one)
  POST /sandbox/expire                          every access token expires now
  POST /sandbox/send   {"url", "secret", "event": {...}, "delivery"?} → signs the body (lowercase
                       hex HMAC-SHA256, x-webhook-signature) and POSTs it with InsurUp's headers;
                       answers with the target's status and body
  GET  /sandbox/health                          {"ok": true, "logins": n, "refreshes": n}

  insurup.py [--port 0] [--port-file FILE] [--token-seconds 600]
  insurup.py send --url URL --secret SECRET FILE.json [--delivery ID]   (no server: one signed POST)

Agent user: demo@insurup.local / demo-password (the demo tenant's secret names them).
"""
import argparse
import hashlib
import hmac
import http.server
import json
import pathlib
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
EMAIL, PASSWORD = "demo@insurup.local", "demo-password"
READ = re.compile(r"^/api/(customers|policies|proposals)/([^/?]+)$")

# The demo data the committed webhook samples refer to.
CUSTOMERS = [
    {"customerId": "7d4b2a10-0000-4000-8000-000000000001", "customerType": "INDIVIDUAL",
     "identityNumber": "10000000146", "firstName": "Ayşe", "lastName": "Yılmaz",
     "email": "ayse.yilmaz@example.com", "phoneNumber": "+905331234567"},
    {"customerId": "7d4b2a10-0000-4000-8000-000000000002", "customerType": "COMPANY",
     "companyTitle": "Demir Lojistik A.Ş.", "taxNumber": "1234567890", "email": "muhasebe@demirlojistik.example",
     "phoneNumber": "+902125551122"},
]
POLICIES = [{"id": "pol-1001", "insuredCustomerId": "7d4b2a10-0000-4000-8000-000000000001"}]
PROPOSALS = [{"id": "prp-2001", "insuredCustomerId": "7d4b2a10-0000-4000-8000-000000000001"}]


def sign(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(url, secret, body, delivery=None, webhook_id="wh-demo"):
    """POSTs one event body (bytes) as InsurUp does; returns (status, text)."""
    event = json.loads(body).get("$event", "")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "content-type": "application/json",
        "x-webhook-event": event,
        "x-webhook-id": webhook_id,
        "x-webhook-delivery": delivery or str(uuid.uuid4()),
        "x-webhook-signature": sign(secret, body),
    })
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Sandbox:
    def __init__(self, token_seconds):
        self.lock = threading.Lock()
        self.token_seconds = token_seconds
        self.access = {}  # token -> expiry (epoch seconds)
        self.refresh = set()
        self.logins = self.refreshes = 0
        self.docs = {"customers": {}, "policies": {}, "proposals": {}}
        for kind, docs in (("customers", CUSTOMERS), ("policies", POLICIES), ("proposals", PROPOSALS)):
            for doc in docs:
                self.store(kind, doc)

    def store(self, kind, doc):
        key = str(doc.get("id") or doc.get("customerId"))
        with self.lock:
            self.docs[kind][key] = doc
        return key

    def issue(self):
        access, refresh = "at-" + secrets.token_hex(12), "rt-" + secrets.token_hex(12)
        self.access[access] = time.time() + self.token_seconds
        self.refresh.add(refresh)
        return {"accessToken": access, "refreshToken": refresh, "expiresIn": self.token_seconds}

    def login(self, body):
        if body.get("email") != EMAIL or body.get("password") != PASSWORD:
            return 401, {"title": "Unauthorized", "status": 401, "detail": "E-posta veya şifre hatalı."}
        with self.lock:
            self.logins += 1
            return 200, dict(self.issue(), requiresTwoFactor=False, userId="agent-user-demo")

    def rotate(self, body):
        with self.lock:
            token = body.get("refreshToken")
            if token not in self.refresh:
                return 401, {"title": "Unauthorized", "status": 401, "detail": "Refresh token geçersiz."}
            self.refresh.discard(token)  # rotation: the old one is spent
            self.refreshes += 1
            return 200, self.issue()

    def authorized(self, header):
        token = (header or "").removeprefix("Bearer ").strip()
        with self.lock:
            expiry = self.access.get(token)
        return expiry is not None and expiry > time.time()


def handler_for(sandbox):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status, body):
            common.answer(self, status, body)

        def do_GET(self):  # noqa: N802
            path = self.path.partition("?")[0]
            if path == "/sandbox/health":
                return self.answer(200, {"ok": True, "logins": sandbox.logins, "refreshes": sandbox.refreshes})
            match = READ.match(path)
            if not match:
                return self.answer(404, {"title": "Not Found", "status": 404, "detail": f"no route {path}"})
            if not sandbox.authorized(self.headers.get("authorization")):
                return self.answer(401, {"title": "Unauthorized", "status": 401, "detail": "Token geçersiz veya süresi dolmuş."})
            with sandbox.lock:
                doc = sandbox.docs[match.group(1)].get(match.group(2))
            if doc is None:
                return self.answer(404, {"title": "Not Found", "status": 404, "detail": "Kayıt bulunamadı."})
            self.answer(200, doc)

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("content-length", 0))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return self.answer(400, {"title": "Bad Request", "status": 400, "detail": "body is not JSON"})
            path = self.path.partition("?")[0]
            if path == "/api/authentication:agent-user/login":
                return self.answer(*sandbox.login(body))
            if path == "/api/authentication:agent-user/refresh":
                return self.answer(*sandbox.rotate(body))
            if path in ("/sandbox/customers", "/sandbox/policies", "/sandbox/proposals"):
                docs = body if isinstance(body, list) else [body]
                kind = path.rsplit("/", 1)[1]
                return self.answer(200, {"stored": [sandbox.store(kind, d) for d in docs]})
            if path == "/sandbox/expire":
                with sandbox.lock:
                    sandbox.access = {t: 0 for t in sandbox.access}
                return self.answer(200, {"ok": True})
            if path == "/sandbox/send":
                event = json.dumps(body.get("event"), ensure_ascii=False).encode()
                status, text = send(body["url"], body["secret"], event, body.get("delivery"))
                return self.answer(200, {"status": status, "body": text})
            self.answer(404, {"title": "Not Found", "status": 404, "detail": f"no route {path}"})

        def log_message(self, fmt, *args):
            print(f"insurup-sandbox: {self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}",
                  flush=True)

    return Handler


def serve(port=0, token_seconds=600):
    sandbox = Sandbox(token_seconds)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler_for(sandbox))
    return server, sandbox


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "send":
        ap = argparse.ArgumentParser(prog="insurup.py send")
        ap.add_argument("file")
        ap.add_argument("--url", required=True)
        ap.add_argument("--secret", required=True)
        ap.add_argument("--delivery")
        args = ap.parse_args(sys.argv[2:])
        status, text = send(args.url, args.secret, pathlib.Path(args.file).read_bytes(), args.delivery)
        print(status, text)
        sys.exit(0 if 200 <= status < 300 else 1)
    common.run(__doc__, lambda args: serve(args.port, args.token_seconds),
               lambda port, _: f"insurup sandbox on http://127.0.0.1:{port} (agent user {EMAIL})",
               lambda ap: ap.add_argument("--token-seconds", type=int, default=600))


if __name__ == "__main__":
    main()
