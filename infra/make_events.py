#!/usr/bin/env python3
"""Regenerates events/whatsapp-inbound/*.json (API Gateway HTTP API v2 events) from the Meta
webhook bodies kept next to them (*.body.json), signed with the demo tenant's test App Secret.
The body text is used byte for byte: the signature covers exactly what Meta would send."""
import json
import pathlib
import uuid

from sign import DEMO_APP_SECRET, signature

EVENTS = pathlib.Path(__file__).resolve().parent.parent / "events" / "whatsapp-inbound"
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
    print("wrote", ", ".join(written + ["handshake"]))


if __name__ == "__main__":
    main()
