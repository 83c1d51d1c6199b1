#!/usr/bin/env python3
"""A Karel CRM stand-in (`PpOpportunities`, seed 003) for `make dev` and tooling tests.

  GET    /api/v1/PpOpportunities/{id}            {"Result": {...PpOpportunityIndexViewModel}, "ResultMessage"}
  POST   /api/v1/PpOpportunities                 201 {"Result": <new id>, "ResultMessage"}
  PUT    /api/v1/PpOpportunities/{id}            200 {"Result": id}; CustomFieldValueId updates a value,
                                                 none adds one, all-empty deletes it, [] deletes all
  DELETE /api/v1/PpOpportunities/{id}?deleteCollection=true|false   200, empty body (soft delete)
  Every route wants `Authorization: Bearer demo-karel-token` (401 otherwise). A locked
  opportunity answers PUT and DELETE with 400 "Fırsat verisi kilitli".

  POST /sandbox/lock  {"id"}                     lock an opportunity's data
  POST /sandbox/slow  {"seconds", "times"}       the next `times` POSTs wait `seconds` before answering
                                                 (after storing: a create whose answer times out)
  GET  /sandbox/opportunities                    everything stored (tags included), for operators and tests

  karel.py [--port 0] [--port-file FILE]
"""
import http.server
import json
import pathlib
import re
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

TOKEN = "demo-karel-token"
ONE = re.compile(r"^/api/v1/PpOpportunities/(\d+)$")


class Sandbox:
    def __init__(self):
        self.lock = threading.Lock()
        self.opportunities = {}
        self.next_id = 12345
        self.next_value_id = 100
        self.locked = set()
        self.slow = [0.0, 0]  # seconds, remaining POSTs

    def fields(self, requested, existing):
        """Applies Karel's custom-field rules to `existing` (value id -> field)."""
        if requested == []:
            return {}
        result = dict(existing)
        for field in requested or []:
            empty = not any(field.get(k) for k in ("CustomFieldTextValue", "CustomFieldDateValue", "CustomFieldOptionId"))
            value_id = field.get("CustomFieldValueId")
            if value_id in result and empty:
                del result[value_id]
            elif value_id in result:
                result[value_id] = dict(field, CustomFieldValueId=value_id)
            elif not empty:
                value_id = self.next_value_id
                self.next_value_id += 1
                result[value_id] = dict(field, CustomFieldValueId=value_id)
        return result

    def view(self, opportunity_id):
        o = self.opportunities[opportunity_id]
        return {
            "OpportunityId": opportunity_id, "OpportunityName": o["Description"],
            "OpportunityPrice": o.get("OpportunityPrice"), "OpportunityState": o.get("OpportunityState"),
            "OpportunityStartDate": o.get("OpportunityStartDate"), "EstimatedEndDate": o.get("EstimatedEndDate"),
            "Period": o.get("Period", 0), "Duration": o.get("Duration"), "RefCurrencyId": o.get("RefCurrencyId", 1),
            "CurrencySymbol": "TRY", "PipelineStageId": o.get("RefPipelineStageId"),
            "CustomerName": f"Kart {o['RefCustomerCardId']}", "RepresentativeNameSurname": f"Temsilci {o['RefRepresentativeCardId']}",
            "Tags": o.get("Tags", ""),
            "CustomFields": [{"CustomFieldValueId": vid, "CustomFieldFieldLabel": o["labels"].get(str(f["CustomFieldId"]), f"Alan {f['CustomFieldId']}"),
                              "CustomFieldFieldType": "Text", "CustomFieldTextValue": f.get("CustomFieldTextValue"),
                              "CustomFieldDateValue": f.get("CustomFieldDateValue"), "CustomFieldOptionName": None}
                             for vid, f in o["fields"].items()],
            "AddedBy": "api@onecrm", "AddedDate": o["added"], "UpdatedBy": "api@onecrm", "UpdatedDate": o.get("updated"),
        }


# Labels Karel shows for the demo tenant's custom fields (the admin's demo mapping uses them).
LABELS = {"20": "Not", "21": "Teklif Tarihi", "22": "Proje Tipi"}


def handler_for(sandbox):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status, body=None):
            common.answer(self, status, body)

        def body(self):
            length = int(self.headers.get("content-length", 0))
            return json.loads(self.rfile.read(length) or b"{}")

        def authorized(self):
            if self.headers.get("authorization") != f"Bearer {TOKEN}":
                self.answer(401, {"Result": None, "ResultMessage": "Yetkisiz erişim"})
                return False
            return True

        def do_GET(self):  # noqa: N802
            path = self.path.partition("?")[0]
            if path == "/sandbox/opportunities":
                with sandbox.lock:
                    return self.answer(200, [sandbox.view(i) for i in sandbox.opportunities])
            if not self.authorized():
                return None
            match = ONE.match(path)
            with sandbox.lock:
                if not match or int(match.group(1)) not in sandbox.opportunities:
                    return self.answer(404, {"Result": None, "ResultMessage": "Fırsat bulunamadı"})
                return self.answer(200, {"Result": sandbox.view(int(match.group(1))), "ResultMessage": "İşlem başarılı"})

        def do_POST(self):  # noqa: N802
            path = self.path.partition("?")[0]
            body = self.body()
            if path == "/sandbox/lock":
                with sandbox.lock:
                    sandbox.locked.add(int(body["id"]))
                return self.answer(200, {"ok": True})
            if path == "/sandbox/slow":
                with sandbox.lock:
                    sandbox.slow = [float(body.get("seconds", 5)), int(body.get("times", 1))]
                return self.answer(200, {"ok": True})
            if path != "/api/v1/PpOpportunities":
                return self.answer(404, {"Result": None, "ResultMessage": f"no route {path}"})
            if not self.authorized():
                return None
            missing = [k for k in ("Description", "RefCustomerCardId", "RefRepresentativeCardId") if not body.get(k)]
            if missing:
                return self.answer(400, {"Result": None, "ResultMessage": f"Zorunlu alan eksik: {', '.join(missing)}"})
            with sandbox.lock:
                new_id = sandbox.next_id
                sandbox.next_id += 1
                stored = dict(body, added=time.strftime("%Y-%m-%dT%H:%M:%S"), labels=LABELS)
                stored["fields"] = sandbox.fields(body.get("CustomFields"), {})
                sandbox.opportunities[new_id] = stored
                wait, sandbox.slow[1] = (sandbox.slow[0] if sandbox.slow[1] > 0 else 0), max(0, sandbox.slow[1] - 1)
            if wait:
                time.sleep(wait)  # stored, but the answer comes too late: an outcome-unknown create
            self.answer(201, {"Result": new_id, "ResultMessage": "İşlem başarılı"})

        def do_PUT(self):  # noqa: N802
            if not self.authorized():
                return None
            match = ONE.match(self.path.partition("?")[0])
            body = self.body()
            with sandbox.lock:
                if not match or int(match.group(1)) not in sandbox.opportunities:
                    return self.answer(404, {"Result": None, "ResultMessage": "Fırsat bulunamadı"})
                opportunity_id = int(match.group(1))
                if opportunity_id in sandbox.locked:
                    return self.answer(400, {"Result": None, "ResultMessage": "Fırsat verisi kilitli, güncelleme yapılamaz"})
                old = sandbox.opportunities[opportunity_id]
                fields = sandbox.fields(body.get("CustomFields"), old["fields"])
                sandbox.opportunities[opportunity_id] = dict(old, **body, fields=fields,
                                                             updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
            self.answer(200, {"Result": opportunity_id, "ResultMessage": "İşlem başarılı"})

        def do_DELETE(self):  # noqa: N802
            if not self.authorized():
                return None
            match = ONE.match(self.path.partition("?")[0])
            with sandbox.lock:
                if not match or int(match.group(1)) not in sandbox.opportunities:
                    return self.answer(404, {"Result": None, "ResultMessage": "Fırsat bulunamadı"})
                opportunity_id = int(match.group(1))
                if opportunity_id in sandbox.locked:
                    return self.answer(400, {"Result": None, "ResultMessage": "Fırsat verisi kilitli, silme yapılamaz"})
                del sandbox.opportunities[opportunity_id]
            self.answer(200)

        def log_message(self, fmt, *args):
            print(f"karel-sandbox: {self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}", flush=True)

    return Handler


def serve(port=0):
    sandbox = Sandbox()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler_for(sandbox))
    return server, sandbox


def main():
    common.run(__doc__, lambda args: serve(args.port),
               lambda port, _: f"karel sandbox on http://127.0.0.1:{port} (token {TOKEN})")


if __name__ == "__main__":
    main()
