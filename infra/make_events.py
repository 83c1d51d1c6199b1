#!/usr/bin/env python3
"""Regenerates events/whatsapp-inbound/*.json and events/insurup-policy-webhook/*.json (API
Gateway HTTP API v2 events) from the partner bodies kept next to them (*.body.json), signed with
the demo tenant's test secrets (Meta: App Secret `demo-app-secret`, X-Hub-Signature-256; InsurUp:
webhook secret `demo-insurup-secret`, bare hex x-webhook-signature). The body text is used byte
for byte (trailing newline dropped): the signature covers exactly what the partner would send."""
import hashlib
import hmac
import json
import pathlib
import uuid

from sign import DEMO_APP_SECRET, signature

EVENTS = pathlib.Path(__file__).resolve().parent.parent / "events" / "whatsapp-inbound"
INSURUP = EVENTS.parent / "insurup-policy-webhook"
INSURUP_SECRET = "demo-insurup-secret"
INSURUP_ACCOUNT = "demo-insurup"


def insurup_event(body: str, name: str) -> dict:
    """InsurUp's POST to /insurup/<account>, signed as InsurUp signs (contracts.md §3.3)."""
    secret = "not-the-demo-secret" if name == "bad-signature" else INSURUP_SECRET
    path = f"/insurup/{INSURUP_ACCOUNT}"
    event = json.loads(body)["$event"]
    delivery = str(uuid.uuid5(uuid.NAMESPACE_URL, f"insurup/{name}"))
    context = request_context("POST", delivery)
    context.update(routeKey="POST /insurup/{account}")
    context["http"].update(path=path, sourceIp="185.22.184.10", userAgent="InsurUp-Webhooks/1.0")
    return {
        "version": "2.0", "routeKey": "POST /insurup/{account}", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "InsurUp-Webhooks/1.0",
                    "host": "abc123defg.execute-api.eu-central-1.amazonaws.com",
                    "x-webhook-event": event, "x-webhook-id": "wh-demo", "x-webhook-delivery": delivery,
                    "x-webhook-signature": hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest(),
                    "x-forwarded-for": "185.22.184.10", "x-forwarded-proto": "https"},
        "pathParameters": {"account": INSURUP_ACCOUNT},
        "requestContext": context,
        "body": body, "isBase64Encoded": False,
    }
TIME_EPOCH = 1795510800000  # 2026-11-24T09:00:00Z


def request_context(method, request_id):
    return {
        "accountId": "123456789012", "apiId": "abc123defg", "domainName": "abc123defg.execute-api.eu-central-1.amazonaws.com",
        "domainPrefix": "abc123defg", "requestId": request_id, "routeKey": f"{method} /whatsapp", "stage": "$default",
        "time": "24/Nov/2026:09:00:00 +0000", "timeEpoch": TIME_EPOCH,
        "http": {"method": method, "path": "/whatsapp", "protocol": "HTTP/1.1", "sourceIp": "173.252.127.1", "userAgent": "facebookexternalua"},
    }


def post_event(body: str, sig: str, name: str) -> dict:
    return {
        "version": "2.0", "routeKey": "POST /whatsapp", "rawPath": "/whatsapp", "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "facebookexternalua", "accept": "*/*",
                    "host": "abc123defg.execute-api.eu-central-1.amazonaws.com", "x-hub-signature-256": sig,
                    "x-forwarded-for": "173.252.127.1", "x-forwarded-proto": "https"},
        "requestContext": request_context("POST", str(uuid.uuid5(uuid.NAMESPACE_URL, name))),
        "body": body, "isBase64Encoded": False,
    }


def handshake_event() -> dict:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "demo-verify-token"}
    return {
        "version": "2.0", "routeKey": "GET /whatsapp", "rawPath": "/whatsapp",
        "rawQueryString": "&".join(f"{k}={v}" for k, v in query.items()), "queryStringParameters": query,
        "headers": {"user-agent": "facebookplatform/1.0 (+http://developers.facebook.com)", "accept": "*/*",
                    "host": "abc123defg.execute-api.eu-central-1.amazonaws.com"},
        "requestContext": request_context("GET", str(uuid.uuid5(uuid.NAMESPACE_URL, "handshake"))),
        "isBase64Encoded": False,
    }


def main():
    written = []
    for body_file in sorted(EVENTS.glob("*.body.json")):
        name = body_file.name[: -len(".body.json")]
        body = body_file.read_text(encoding="utf-8")
        secret = "not-the-demo-secret" if name == "bad-signature" else DEMO_APP_SECRET
        event = post_event(body, signature(body.encode(), secret), name)
        (EVENTS / f"{name}.json").write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(name)
    (EVENTS / "handshake.json").write_text(json.dumps(handshake_event(), indent=2) + "\n", encoding="utf-8")
    for body_file in sorted(INSURUP.glob("*.body.json")):
        name = body_file.name[: -len(".body.json")]
        body = body_file.read_text(encoding="utf-8").rstrip("\n")
        event = insurup_event(body, name)
        (INSURUP / f"{name}.json").write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(f"insurup/{name}")
    print("wrote", ", ".join(written + ["handshake"]))


if __name__ == "__main__":
    main()
