#!/usr/bin/env python3
"""A Graph API stand-in for Lead Ads, for `make dev` and tooling tests (the real Graph is not
reachable here). It speaks Graph's own JSON:

  GET  /{version}/{leadgen_id}?fields=a,b   the stored lead (only the asked fields, plus id), with
                                            a Bearer token; Graph's error shape otherwise
  POST /sandbox/leads       a lead document (or a list): stored by its "id"; answer {"stored": [...]}
  POST /sandbox/errors      {"leadgen_id", "code": 190|100|4|500, "times": N}: the next N reads of
                            that lead (every read when N is absent) answer that error
  GET  /sandbox/health      {"ok": true, "leads": n}

Started by `make dev` (its URL is PARTNER_URL_GRAPH for the functions); it loads
events/meta-lead/graph-lead.json and one lead for each committed webhook sample.

  graph.py [--port 0] [--port-file FILE]
"""
import copy
import http.server
import json
import pathlib
import re
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

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


class Sandbox:
    def __init__(self):
        self.lock = threading.Lock()
        self.leads = {}
        self.errors = {}  # id -> [code, remaining or None]

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
                return self.answer(200, {"ok": True, "leads": len(sandbox.leads)})
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
            if self.path == "/sandbox/leads":
                leads = body if isinstance(body, list) else [body]
                if not all(isinstance(lead, dict) and lead.get("id") for lead in leads):
                    return self.answer(400, {"error": "each lead needs an id"})
                return self.answer(200, {"stored": [sandbox.store(lead) for lead in leads]})
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


def serve(port=0, samples=True):
    sandbox = Sandbox()
    if samples:
        sandbox.load_samples()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler_for(sandbox))
    return server, sandbox


def main():
    common.run(__doc__, lambda args: serve(args.port),
               lambda port, sandbox: f"graph sandbox on http://127.0.0.1:{port} with {len(sandbox.leads)} lead(s)")


if __name__ == "__main__":
    main()
