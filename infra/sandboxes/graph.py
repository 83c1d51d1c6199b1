#!/usr/bin/env python3
"""A Graph API stand-in for Lead Ads and WhatsApp sends, for `make dev` and tooling tests (the
real Graph is not reachable here). It speaks Graph's own JSON:

  GET  /{version}/{leadgen_id}?fields=a,b   the stored lead (only the asked fields, plus id), with
                                            a Bearer token; Graph's error shape otherwise
  POST /{version}/{phone_number_id}/messages  a WhatsApp send (contracts §1.8): answers a wamid,
                            then posts the statuses Meta would (sent, delivered, read; or failed)
                            to --webhook, signed with --app-secret like Meta's X-Hub-Signature-256
  POST /sandbox/leads       a lead document (or a list): stored by its "id"; answer {"stored": [...]}
  POST /sandbox/errors      {"leadgen_id", "code": 190|100|4|500, "times": N}: the next N reads of
                            that lead (every read when N is absent) answer that error;
                            {"to": "905...", "code": <a WhatsApp code below>, "times": N}: the
                            next N sends to that number answer it
  GET  /sandbox/sends       the sends received, newest last
  GET  /sandbox/health      {"ok": true, "leads": n, "sends": n}

Sends, as Meta answers them: token "expired-token" → 190; a number ending in 0000 → 131026;
templates known here: randevu_hatirlatma (1 body parameter), teklif_hazir (2), hosgeldiniz (0);
another name → 132001, another parameter count → 132000; a number ending in 1111 is accepted
and then fails asynchronously (a `failed` status with 131026).

Started by `make dev` (its URL is PARTNER_URL_GRAPH for the functions); it loads
events/meta-lead/graph-lead.json and one lead for each committed webhook sample.

  graph.py [--port 0] [--port-file FILE] [--webhook URL] [--app-secret SECRET]
"""
import copy
import hashlib
import http.server
import json
import pathlib
import re
import sys
import threading
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import common  # noqa: E402
import sign  # noqa: E402  (Meta's X-Hub-Signature-256, the one implementation in infra/)

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent

# Graph's documented answers for the codes the worker tells apart (contracts.md §2.7).
ERRORS = {
    190: (400, {"message": "Error validating access token: Session has expired on Tuesday, 24-Nov-26 09:00:00 PST.",
                "type": "OAuthException", "code": 190, "error_subcode": 463}),
    100: (400, {"message": "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to "
                           "missing permissions, or does not support this operation.",
                "type": "GraphMethodException", "code": 100, "error_subcode": 33}),
    4: (400, {"message": "(#4) Application request limit reached", "type": "OAuthException", "code": 4,
              "is_transient": True}),
    500: (500, {"message": "An unknown error has occurred.", "type": "OAuthException", "code": 1,
                "is_transient": True}),
}
LEAD_PATH = re.compile(r"^/v\d+\.\d+/(\d+)$")
SEND_PATH = re.compile(r"^/v\d+\.\d+/(\d+)/messages$")
# The demo tenant's WhatsApp Business Account (events/whatsapp-inbound samples).
WABA = "102290129340398"
TEMPLATES = {"randevu_hatirlatma": 1, "teklif_hazir": 2, "hosgeldiniz": 0}
# WhatsApp's send errors (contracts §1.9): HTTP status, title, details.
SEND_ERRORS = {
    190: (401, "Error validating access token: Session has expired.", "Session has expired"),
    131026: (400, "Message undeliverable", "Message Undeliverable."),
    131047: (400, "Re-engagement message", "Message failed to send because more than 24 hours have passed "
                                           "since the customer last replied to this number."),
    132000: (400, "Number of parameters does not match the expected number of params",
             "body: number of localizable_params (0) does not match the expected number of params (1)"),
    132001: (404, "Template name does not exist in the translation", "template name does not exist in tr"),
    130429: (429, "Rate limit hit", "Cloud API message throughput has been reached."),
    131056: (400, "(Business Account, Consumer Account) pair rate limit hit",
             "Message failed to send because there were too many messages sent from this phone number "
             "to the same phone number in a short period of time."),
    131000: (500, "Something went wrong", "Something went wrong"),
}


def send_error(code):
    status, title, details = SEND_ERRORS[code]
    return status, {"error": {"message": f"(#{code}) {title}", "type": "OAuthException", "code": code,
                              "error_data": {"messaging_product": "whatsapp", "details": details},
                              "fbtrace_id": "SANDBOX"}}


class Sandbox:
    def __init__(self, webhook=None, app_secret="demo-app-secret"):
        self.lock = threading.Lock()
        self.leads = {}
        self.errors = {}  # id -> [code, remaining or None]
        self.send_errors = {}  # recipient digits -> [code, remaining or None]
        self.sends = []
        self.webhook = webhook
        self.app_secret = app_secret

    def send(self, phone_number_id, token, body):
        """Meta's answer to one send, and the statuses to post after it."""
        to = str(body.get("to", "")).lstrip("+")
        with self.lock:
            self.sends.append({"phone_number_id": phone_number_id, "body": body})
            n = len(self.sends)
            error = self.send_errors.get(to)
            if error:
                code, remaining = error
                if remaining is not None:
                    error[1] -= 1
                    if error[1] <= 0:
                        del self.send_errors[to]
                return send_error(code) + ([],)
        if token == "expired-token":
            return send_error(190) + ([],)
        if body.get("messaging_product") != "whatsapp" or not to.isdigit():
            return 400, {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100,
                                   "error_data": {"messaging_product": "whatsapp", "details": "to or messaging_product"},
                                   "fbtrace_id": "SANDBOX"}}, []
        if to.endswith("0000"):
            return send_error(131026) + ([],)
        if body.get("type") == "template":
            template = body.get("template") or {}
            expected = TEMPLATES.get(template.get("name"))
            if expected is None:
                return send_error(132001) + ([],)
            given = sum(len(c.get("parameters", [])) for c in template.get("components", []) if c.get("type") == "body")
            if given != expected:
                return send_error(132000) + ([],)
        wamid = "wamid.SANDBOX" + hashlib.sha256(f"{phone_number_id}:{to}:{n}".encode()).hexdigest()[:24].upper()
        statuses = ["sent", "failed"] if to.endswith("1111") else ["sent", "delivered", "read"]
        answer = {"messaging_product": "whatsapp", "contacts": [{"input": body.get("to"), "wa_id": to}],
                  "messages": [{"id": wamid, "message_status": "accepted"}]}
        return 200, answer, [(phone_number_id, wamid, to, status, body.get("biz_opaque_callback_data"))
                             for status in statuses]

    def post_statuses(self, statuses):
        """Posts each status as Meta would, signed, a little apart; retried while the webhook
        is not up yet."""
        for i, (phone_number_id, wamid, to, status, callback) in enumerate(statuses):
            time.sleep(0.3 if i == 0 else 0.5)
            item = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": to}
            if callback:
                item["biz_opaque_callback_data"] = callback
            if status == "failed":
                item["errors"] = [{"code": 131026, "title": "Message undeliverable",
                                   "message": "Message undeliverable",
                                   "error_data": {"details": "Message Undeliverable."}}]
            if status == "sent":
                item["pricing"] = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "utility"}
            payload = {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "908503031234", "phone_number_id": phone_number_id},
                "statuses": [item]}, "field": "messages"}]}]}
            data = json.dumps(payload, separators=(",", ":")).encode()
            signature = sign.signature(data, self.app_secret)
            for _ in range(20):
                try:
                    request = urllib.request.Request(self.webhook, data=data, method="POST", headers={
                        "content-type": "application/json", "x-hub-signature-256": signature})
                    with urllib.request.urlopen(request, timeout=10) as response:
                        if response.status == 200:
                            break
                except OSError as e:
                    print(f"graph-sandbox: status {status} of {wamid} not delivered yet: {e}", flush=True)
                time.sleep(1)

    def load_samples(self):
        template = json.loads((ROOT / "events/meta-lead/graph-lead.json").read_text(encoding="utf-8"))
        self.store(template)
        for sample in sorted((ROOT / "events/meta-lead").glob("*.body.json")):
            body = json.loads(sample.read_text(encoding="utf-8"))
            for entry in body.get("entry", []):
                for change in entry.get("changes", []):
                    lead_id = str(change.get("value", {}).get("leadgen_id", ""))
                    if lead_id and lead_id not in self.leads:
                        lead = copy.deepcopy(template)
                        lead["id"] = lead_id
                        suffix = lead_id[-2:]
                        lead["field_data"] = [
                            {"name": "full_name", "values": [f"Deneme Kişi {suffix}"]},
                            {"name": "email", "values": [f"deneme{suffix}@ornek.com"]},
                            {"name": "phone_number", "values": [f"+90532555{int(suffix):04d}"]},
                        ]
                        if "organic" in sample.name:
                            lead["is_organic"] = True
                            for key in ("ad_id", "ad_name", "adset_id", "adset_name", "campaign_id", "campaign_name"):
                                lead.pop(key, None)
                        self.store(lead)

    def store(self, lead):
        with self.lock:
            self.leads[str(lead["id"])] = lead
        return str(lead["id"])

    def read(self, lead_id, fields):
        with self.lock:
            error = self.errors.get(lead_id)
            if error:
                code, remaining = error
                if remaining is not None:
                    error[1] -= 1
                    if error[1] <= 0:
                        del self.errors[lead_id]
                status, body = ERRORS[code]
                body = dict(body, message=body["message"].replace("{id}", lead_id), fbtrace_id="SANDBOX")
                return status, {"error": body}
            lead = self.leads.get(lead_id)
        if lead is None:
            status, body = ERRORS[100]
            return status, {"error": dict(body, message=body["message"].replace("{id}", lead_id), fbtrace_id="SANDBOX")}
        if fields:
            wanted = set(fields.split(",")) | {"id"}
            lead = {k: v for k, v in lead.items() if k in wanted}
        return 200, lead


def handler_for(sandbox):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status, body):
            common.answer(self, status, body)

        def do_GET(self):  # noqa: N802
            path, _, query = self.path.partition("?")
            if path == "/sandbox/health":
                return self.answer(200, {"ok": True, "leads": len(sandbox.leads), "sends": len(sandbox.sends)})
            if path == "/sandbox/sends":
                with sandbox.lock:
                    return self.answer(200, {"sends": list(sandbox.sends)})
            match = LEAD_PATH.match(path)
            if not match:
                return self.answer(400, {"error": {"message": f"Unknown path components: {path}",
                                                   "type": "OAuthException", "code": 2500}})
            if not self.headers.get("authorization", "").startswith("Bearer "):
                return self.answer(400, {"error": {"message": "An access token is required to request this resource.",
                                                   "type": "OAuthException", "code": 104}})
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            status, body = sandbox.read(match.group(1), params.get("fields", "").replace("%2C", ","))
            self.answer(status, body)

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("content-length", 0))
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                return self.answer(400, {"error": "body is not JSON"})
            match = SEND_PATH.match(self.path.split("?")[0])
            if match:
                auth = self.headers.get("authorization", "")
                if not auth.startswith("Bearer ") or not isinstance(body, dict):
                    return self.answer(*send_error(190))
                status, answer, statuses = sandbox.send(match.group(1), auth[len("Bearer "):], body)
                self.answer(status, answer)
                if statuses and sandbox.webhook:
                    threading.Thread(target=sandbox.post_statuses, args=(statuses,), daemon=True).start()
                return None
            if self.path == "/sandbox/leads":
                leads = body if isinstance(body, list) else [body]
                if not all(isinstance(lead, dict) and lead.get("id") for lead in leads):
                    return self.answer(400, {"error": "each lead needs an id"})
                return self.answer(200, {"stored": [sandbox.store(lead) for lead in leads]})
            if self.path == "/sandbox/errors" and isinstance(body, dict) and body.get("to"):
                if body.get("code") not in SEND_ERRORS:
                    return self.answer(400, {"error": f"to and a code of {sorted(SEND_ERRORS)} are required"})
                with sandbox.lock:
                    sandbox.send_errors[str(body["to"]).lstrip("+")] = [body["code"], body.get("times")]
                return self.answer(200, {"ok": True})
            if self.path == "/sandbox/errors":
                code = body.get("code") if isinstance(body, dict) else None
                if code not in ERRORS or not body.get("leadgen_id"):
                    return self.answer(400, {"error": f"leadgen_id and a code of {sorted(ERRORS)} are required"})
                with sandbox.lock:
                    sandbox.errors[str(body["leadgen_id"])] = [code, body.get("times")]
                return self.answer(200, {"ok": True})
            self.answer(404, {"error": f"no route {self.path}"})

        def log_message(self, fmt, *args):
            print(f"graph-sandbox: {self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}", flush=True)

    return Handler


def serve(port=0, samples=True, webhook=None, app_secret="demo-app-secret"):
    sandbox = Sandbox(webhook, app_secret)
    if samples:
        sandbox.load_samples()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler_for(sandbox))
    return server, sandbox


def main():
    def options(ap):
        ap.add_argument("--webhook", help="where WhatsApp statuses are posted (the local whatsapp-inbound)")
        ap.add_argument("--app-secret", default="demo-app-secret", help="signs the statuses")

    common.run(__doc__, lambda args: serve(args.port, webhook=args.webhook, app_secret=args.app_secret),
               lambda port, sandbox: f"graph sandbox on http://127.0.0.1:{port} with {len(sandbox.leads)} lead(s)",
               options)


if __name__ == "__main__":
    main()
