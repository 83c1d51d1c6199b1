#!/usr/bin/env python3
"""What one event costs on AWS: `make cost`.

Drives a fixed mix of events (WhatsApp, Lead Ads with Graph on the sandbox, web forms) through
the real functions (release binaries, on a loopback Lambda
Runtime API as in `make bench`) against a private emulator, with a recording proxy between the
functions and the emulator: every DynamoDB, SQS and Secrets Manager request an event causes is
seen with its items, and priced with DynamoDB's on-demand rules:

  write units: 1 per started KB of the item (the larger of before/after for an update), doubled
               inside a transaction (a ConditionCheck is counted like a write of the item it
               checks: the conservative reading), plus one copy per GSI whose keys the item has
               (the item's size for an ALL projection, its keys' for KEYS_ONLY, at least 1);
  read units:  1 per started 4 KB read (half for eventually consistent reads);
  requests:    HTTP API per webhook delivery, Lambda per invocation (+ GB-seconds at an assumed
               billed duration: the emulator's latency is not DynamoDB's), SQS per request (a send,
               and the event source's receive + delete shared by a batch). Secret reads are counted
               but not charged per event: a warm function reads a secret once per cache period.

  cost.py [--events 20] [--region us-east-1] [--price wru=0.625 ...] [--only "template"]

Prices (USD per million unless noted) live in PRICES below; --price overrides one.
"""
import argparse
import http.server
import json
import math
import os
import pathlib
import sys
import threading
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))

# On-demand list prices, us-east-1 (the table). Per million unless the name says otherwise.
PRICES = {
    "us-east-1": {"wru": 0.625, "rru": 0.125, "http_api": 1.00, "sqs": 0.40, "lambda_requests": 0.20,
                  "lambda_gb_second": 0.0000133334, "secrets_calls": 5.00},
}
LAMBDA_MEMORY_GB = 0.25  # template.yaml Globals MemorySize 256
GSI_KEYS = ("gsi1pk", "gsi2pk")


def value_size(v):
    """DynamoDB's size of one attribute value, in bytes."""
    (kind, x), = v.items()
    if kind == "S":
        return len(x.encode())
    if kind == "N":
        digits = x.lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(x)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(e) + 1 for e in x)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(e) + 1 for k, e in x.items())
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(e)) for e in x)
    return 0


def item_size(item):
    return sum(len(name.encode()) + value_size(v) for name, v in item.items())


def write_units(size, transactional=False, gsi_copies=0, copy_sizes=()):
    """`gsi_copies` copies of the whole item (ALL projection); `copy_sizes` the sizes of
    copies that project less (KEYS_ONLY: just the keys), each at least one unit."""
    units = max(1, math.ceil(size / 1024))
    copies = sum(max(1, math.ceil(s / 1024)) for s in copy_sizes)
    return units * (2 if transactional else 1) + units * gsi_copies + copies


def read_units(size, consistent=False):
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


def gsi_copies(item):
    return sum(1 for k in GSI_KEYS if k in item)


def index_copies(item, projections):
    """(whole-item copies, sizes of smaller copies) for the GSIs whose keys `item` has;
    `projections` maps an index key ("gsi1pk") to its ProjectionType (ALL unless told)."""
    whole, sizes = 0, []
    for key in GSI_KEYS:
        if key not in item:
            continue
        if projections.get(key, "ALL") == "KEYS_ONLY":
            names = ("pk", "sk", key, key.replace("pk", "sk"))
            sizes.append(item_size({n: v for n, v in item.items() if n in names}))
        else:
            whole += 1
    return whole, sizes


class Meter:
    """What the functions asked of AWS, in units, by phase."""

    def __init__(self, dynamodb_client):
        self.ddb = dynamodb_client  # to read an updated item's size after the update
        self.phase = None
        self.lock = threading.Lock()
        self.usage = {}
        self.projections = {}

    def projection(self, table):
        """Each GSI's projection type, read once per table from the emulator."""
        if table not in self.projections:
            described = self.ddb.describe_table(TableName=table)["Table"]
            self.projections[table] = {
                index["KeySchema"][0]["AttributeName"]: index.get("Projection", {}).get("ProjectionType", "ALL")
                for index in described.get("GlobalSecondaryIndexes", [])
            }
        return self.projections[table]

    def units(self, table, size, item, transactional=False, indexed=True):
        whole, sizes = index_copies(item, self.projection(table)) if indexed else (0, ())
        return write_units(size, transactional=transactional, gsi_copies=whole, copy_sizes=sizes)

    def add(self, key, amount):
        with self.lock:
            phase = self.usage.setdefault(self.phase, {})
            phase[key] = phase.get(key, 0) + amount

    def wru(self, table, operation, units, size=None):
        self.add("wru", units)
        name = f"{table.rsplit('-', 1)[-1]}:{operation}"
        self.add(f"wru:{name}", units)
        if size is not None:
            self.add(f"bytes:{name}", size)
            self.add(f"items:{name}", 1)

    def keep_largest(self, table, operation, item):
        """The largest item each table and operation wrote, for `--detail` (what to slim)."""
        name = f"{table.rsplit('-', 1)[-1]}:{operation}"
        with self.lock:
            largest = self.usage.setdefault(self.phase, {}).setdefault("largest", {})
            if item_size(item) > largest.get(name, (0, None))[0]:
                largest[name] = (item_size(item), item)

    def current_size(self, table, key):
        item = self.ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return (item_size(item), item) if item else (0, {})

    def dynamodb(self, operation, request, response):
        self.add(f"dynamodb.{operation}", 1)
        if operation == "PutItem":
            item = request["Item"]
            size = item_size(item)
            self.keep_largest(request["TableName"], operation, item)
            self.wru(request["TableName"], operation, self.units(request["TableName"], size, item), size)
        elif operation == "UpdateItem":
            size, item = self.current_size(request["TableName"], request["Key"])
            self.wru(request["TableName"], operation, self.units(request["TableName"], size, item), size)
        elif operation == "BatchWriteItem":
            for table, requests in request["RequestItems"].items():
                for r in requests:
                    item = r.get("PutRequest", {}).get("Item")
                    if item:
                        self.wru(table, operation, self.units(table, item_size(item), item), item_size(item))
        elif operation == "TransactWriteItems":
            cancelled = "CancellationReasons" in response or response.get("__type", "").endswith("TransactionCanceledException")
            for action in request["TransactItems"]:
                (kind, op), = action.items()
                if kind == "Put":
                    size, item = item_size(op["Item"]), op["Item"]
                else:
                    size, item = self.current_size(op["TableName"], op["Key"])
                # A cancelled transaction still consumes its capacity.
                indexed = not (kind == "ConditionCheck" or cancelled)
                self.wru(op["TableName"], f"Transact.{kind}",
                         self.units(op["TableName"], size, item, transactional=True, indexed=indexed), size)
        elif operation == "GetItem":
            size = item_size(response.get("Item", {}))
            self.add("rru", read_units(size, request.get("ConsistentRead", False)))
        elif operation == "Query":
            size = sum(item_size(i) for i in response.get("Items", []))
            self.add("rru", read_units(size, request.get("ConsistentRead", False)))


def start_proxy(upstream, meter):
    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
            request = urllib.request.Request(upstream + self.path, data=body, method="POST", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=30) as r:
                    status, answer, answer_headers = r.status, r.read(), r.headers.items()
            except urllib.error.HTTPError as e:
                status, answer, answer_headers = e.code, e.read(), e.headers.items()
            target = self.headers.get("x-amz-target", "")
            service, _, operation = target.partition(".")
            try:
                parsed_request = json.loads(body or b"{}")
                parsed_answer = json.loads(answer or b"{}")
            except ValueError:
                parsed_request, parsed_answer = {}, {}
            if service.startswith("DynamoDB"):
                meter.dynamodb(operation, parsed_request, parsed_answer)
            elif service == "AmazonSQS":
                meter.add("sqs", 1)
            elif service == "secretsmanager":
                meter.add("secrets_calls", 1)
            self.send_response(status)
            for k, v in answer_headers:
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                    self.send_header(k, v)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    import boto3
    import bench

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--price", action="append", default=[], help="name=value, e.g. wru=0.625")
    ap.add_argument("--batch-size", type=int, default=10,
                    help="events per worker invocation (template BatchSize; a busy queue fills batches)")
    ap.add_argument("--detail", action="store_true", help="write units by table and operation")
    ap.add_argument("--billed-ms", type=float, default=40.0,
                    help="assumed billed Lambda time per event, webhook + worker share (AWS, not the emulator)")
    ap.add_argument("--env-file", default=str(ROOT / ".local/test/stack.env"))
    ap.add_argument("--lambda-dir", default=str(ROOT / "target/lambda"))
    ap.add_argument("--only", help="price only the events whose label contains this text")
    args = ap.parse_args()
    prices = dict(PRICES[args.region])
    for p in args.price:
        k, v = p.split("=", 1)
        prices[k] = float(v)
    env = bench.read_env(args.env_file)
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=env["AWS_REGION"])
    ddb = session.client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"])
    meter = Meter(ddb)
    proxy = start_proxy(env["AWS_ENDPOINT_URL"], meter)
    metered = dict(env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.server_address[1]}")
    sys.path.insert(0, str(ROOT / "infra/sandboxes"))
    import graph as graph_sandbox
    from sign import signature
    graph_server, graph = graph_sandbox.serve(0, samples=False)
    threading.Thread(target=graph_server.serve_forever, daemon=True).start()
    metered["PARTNER_URL_GRAPH"] = f"http://127.0.0.1:{graph_server.server_address[1]}"
    import insurup as insurup_sandbox
    insurup_server, _ = insurup_sandbox.serve(0)
    threading.Thread(target=insurup_server.serve_forever, daemon=True).start()
    metered["PARTNER_URL_INSURUP"] = f"http://127.0.0.1:{insurup_server.server_address[1]}"
    sample = json.loads((ROOT / "events/whatsapp-inbound/text-message.json").read_text(encoding="utf-8"))
    status_sample = json.loads((ROOT / "events/whatsapp-inbound/status-read.json").read_text(encoding="utf-8"))
    lead_sample = json.loads((ROOT / "events/meta-lead/single-lead.json").read_text(encoding="utf-8"))
    graph_lead = json.loads((ROOT / "events/meta-lead/graph-lead.json").read_text(encoding="utf-8"))
    form_sample = json.loads((ROOT / "events/web-form/form-json.json").read_text(encoding="utf-8"))
    pbx_sample = json.loads((ROOT / "events/pbx-call/seed-keypress-1.json").read_text(encoding="utf-8"))
    insurup_sample = json.loads((ROOT / "events/insurup-policy-webhook/policy-created.json").read_text(encoding="utf-8"))

    def whatsapp(kind, n):
        out, run = [], uuid.uuid4().hex[:6]
        for i in range(n):
            source = status_sample if kind == "status update" else sample
            body = json.loads(source["body"])
            value = body["entry"][0]["changes"][0]["value"]
            if kind == "status update":
                value["statuses"][0]["id"] = f"wamid.COST{run}{i}"
            else:
                sender = "905321112233" if kind == "known" else f"90545{int(run, 16) % 1000:03d}{i:04d}"
                value["contacts"][0]["wa_id"] = sender
                value["messages"][0].update({"from": sender, "id": f"wamid.COST{run}{i}"})
            text = json.dumps(body, ensure_ascii=False)
            event = json.loads(json.dumps(source))
            event["body"], event["headers"]["x-hub-signature-256"] = text, signature(text.encode())
            out.append(event)
        return out

    def lead_ads(n):
        """Signed leadgen deliveries for new people; the Graph stand-in holds their leads."""
        out, run = [], uuid.uuid4().int % 10**6
        for i in range(n):
            lead_id = f"9{run:06d}{i:05d}"
            lead = dict(graph_lead, id=lead_id, field_data=[
                {"name": "full_name", "values": [f"Maliyet Deneme {i}"]},
                {"name": "email", "values": [f"maliyet{run}{i}@ornek.com"]},
                {"name": "phone_number", "values": [f"+90546{run % 1000:03d}{i:04d}"]}])
            graph.store(lead)
            body = json.loads(lead_sample["body"])
            body["entry"][0]["changes"][0]["value"]["leadgen_id"] = lead_id
            text = json.dumps(body)
            event = json.loads(json.dumps(lead_sample))
            event["body"], event["headers"]["x-hub-signature-256"] = text, signature(text.encode())
            out.append(event)
        return out

    def forms(kind, n):
        out, run = [], uuid.uuid4().int % 10**6
        for i in range(n):
            fields = json.loads(form_sample["body"])
            fields["phone"] = "+905321112233" if kind == "known" else f"+90547{run % 1000:03d}{i:04d}"
            fields["email"] = "mehmet@ornek.com.tr" if kind == "known" else f"form{run}{i}@ornek.com"
            event = json.loads(json.dumps(form_sample))
            event["body"] = json.dumps(fields, ensure_ascii=False)
            out.append(event)
        return out

    def pbx(keypress, n):
        """Calls from the demo customer (a known card), each its own call id."""
        out, run = [], uuid.uuid4().hex[:6]
        for i in range(n):
            event = json.loads(json.dumps(pbx_sample))
            body = json.loads(event["body"])
            body.update({"callUniqueId": f"COST-{run}-{i}", "keypress": keypress})
            event["body"] = json.dumps(body)
            out.append(event)
        return out

    def insurup(n):
        """policy.created for the demo InsurUp customer (her card exists after the first), each
        its own policy, signed with the demo secret."""
        import hashlib
        import hmac
        out, run = [], uuid.uuid4().hex[:6]
        for i in range(n):
            body = json.loads(insurup_sample["body"])
            body["policyId"] = f"pol-cost-{run}-{i}"
            text = json.dumps(body, ensure_ascii=False)
            event = json.loads(json.dumps(insurup_sample))
            event["body"] = text
            event["headers"]["x-webhook-delivery"] = f"cost-{run}-{i}"
            event["headers"]["x-webhook-signature"] = hmac.new(b"demo-insurup-secret", text.encode(), hashlib.sha256).hexdigest()
            out.append(event)
        return out

    send_sample = json.loads((ROOT / "events/crm-api/whatsapp-send.json").read_text(encoding="utf-8"))

    def sends(n):
        """Templates to the demo customer through crm-api, each its own send id; the worker
        sends them to the Graph stand-in."""
        out, run = [], uuid.uuid4().hex[:6]
        for i in range(n):
            body = json.loads(send_sample["body"])
            body["send_id"] = f"cost-{run}-{i}"
            event = json.loads(json.dumps(send_sample))
            event["body"] = json.dumps(body, ensure_ascii=False)
            out.append(event)
        return out

    whatsapp_pair = ("whatsapp-inbound", "whatsapp-worker", "WHATSAPP_QUEUE_URL")
    # (label, integration, functions, events, billed ms per event: a Graph call is slow)
    scenarios = [
        ("message to a known card", "WhatsApp", whatsapp_pair, lambda n: whatsapp("known", n), None),
        ("new lead", "WhatsApp", whatsapp_pair, lambda n: whatsapp("new", n), None),
        ("status update", "WhatsApp", whatsapp_pair, lambda n: whatsapp("status update", n), None),
        ("duplicate delivery", "WhatsApp", whatsapp_pair, lambda n: whatsapp("known", n), None),
        # An operator's (or the CRM's) template: the route, then the worker's call to Graph.
        ("template sent", "WhatsApp", ("crm-api", "whatsapp-worker", "WHATSAPP_SEND_QUEUE_URL"),
         sends, args.billed_ms + 200),
        ("Lead Ads: new lead", "Lead Ads", ("meta-lead", "meta-lead-worker", "META_LEAD_QUEUE_URL"),
         lead_ads, args.billed_ms + 200),
        ("web form: new lead", "web form", ("web-form", "web-form-worker", "WEB_FORM_QUEUE_URL"),
         lambda n: forms("new", n), None),
        ("web form: known card", "web form", ("web-form", "web-form-worker", "WEB_FORM_QUEUE_URL"),
         lambda n: forms("known", n), None),
        # Synchronous: no queue, no worker.
        ("PBX call: show card", "PBX", ("pbx-call", None, None), lambda n: pbx("1", n), None),
        ("PBX call: new ticket", "PBX", ("pbx-call", None, None), lambda n: pbx("3", n), None),
        ("InsurUp: policy issued", "InsurUp", ("insurup-policy-webhook", "insurup-worker", "INSURUP_QUEUE_URL"),
         insurup, None),
    ]
    if args.only:
        scenarios = [s for s in scenarios if args.only in s[0]]
    per_event = {}
    for kind, integration, (webhook, worker_name, queue_variable), make_events, billed_ms in scenarios:
        webhook_bin = f"{args.lambda_dir}/{webhook}/bootstrap"
        worker_bin = f"{args.lambda_dir}/{worker_name}/bootstrap"
        meter.phase = kind
        events = make_events(args.events)
        if kind == "duplicate delivery":
            # Deliver once outside the meter, then measure the redelivery.
            meter.phase = None
            bench.warm_run(webhook_bin, webhook, metered, events)
            bench.warm_run(worker_bin, worker_name, metered, bench.worker_events(env, args.events, queue_variable))
            meter.phase = kind
        _, _, inbound_seconds = bench.warm_run(webhook_bin, webhook, metered, events)
        worker_seconds = 0.0
        if worker_name:
            records = bench.worker_events(env, args.events, queue_variable)
            _, _, worker_seconds = bench.warm_run(worker_bin, worker_name, metered, records)
        usage = meter.usage.get(kind, {})
        n = args.events
        lambda_seconds = (inbound_seconds + worker_seconds) / n
        line = {
            "integration": integration,
            "wru": usage.get("wru", 0) / n, "rru": usage.get("rru", 0) / n,
            "dynamodb_requests": sum(v for k, v in usage.items() if k.startswith("dynamodb.")) / n,
            # the event source's receive + delete, shared by a batch
            "sqs_requests": usage.get("sqs", 0) / n + (2 / args.batch_size if worker_name else 0),
            # A browser's form post is preceded by its CORS preflight (x-api-key is not a
            # simple header): one more HTTP API request and invocation.
            "http_api_requests": 2 if integration == "web form" else 1,
            "lambda_invocations": (2 if integration == "web form" else 1) + (1 / args.batch_size if worker_name else 0),
            "lambda_gb_seconds": (billed_ms or args.billed_ms) / 1000 * LAMBDA_MEMORY_GB,
            "measured_seconds_per_event_on_emulator": lambda_seconds,
            "secrets_calls_counted": usage.get("secrets_calls", 0) / n,
        }
        cost = (line["wru"] * prices["wru"] + line["rru"] * prices["rru"] + line["sqs_requests"] * prices["sqs"]
                + line["http_api_requests"] * prices["http_api"] + line["lambda_invocations"] * prices["lambda_requests"]
                + line["lambda_gb_seconds"] * prices["lambda_gb_second"] * 1e6)
        line["usd_per_million"] = cost
        line["dynamodb_usd_per_million"] = line["wru"] * prices["wru"] + line["rru"] * prices["rru"]
        line["wru_by_table_and_operation"] = {k[4:]: v / n for k, v in sorted(usage.items()) if k.startswith("wru:")}
        line["mean_item_bytes_by_table_and_operation"] = {
            k[6:]: round(v / usage[f"items:{k[6:]}"]) for k, v in sorted(usage.items()) if k.startswith("bytes:")}
        line["items_by_table_and_operation"] = {k[6:]: v / n for k, v in sorted(usage.items()) if k.startswith("items:")}
        per_event[kind] = line
    graph_server.shutdown()
    insurup_server.shutdown()
    proxy.shutdown()
    print(f"{'event':<26}{'WRU':>7}{'RRU':>7}{'DDB req':>9}{'SQS req':>9}{'Lambda':>8}{'$/M DDB':>9}{'$/M total':>11}")
    for kind, l in per_event.items():
        print(f"{kind:<26}{l['wru']:>7.1f}{l['rru']:>7.1f}{l['dynamodb_requests']:>9.1f}{l['sqs_requests']:>9.1f}"
              f"{l['lambda_invocations']:>8.1f}{l['dynamodb_usd_per_million']:>9.2f}{l['usd_per_million']:>11.2f}")
        if args.detail:
            for k, v in l["wru_by_table_and_operation"].items():
                size = l["mean_item_bytes_by_table_and_operation"].get(k)
                count = l["items_by_table_and_operation"].get(k, 0)
                print(f"    {k:<40}{v:>6.1f} WRU" + (f"   {count:.1f} items of {size} bytes on average" if size else ""))
    print(f"prices: {args.region} {json.dumps(prices)}; Lambda {LAMBDA_MEMORY_GB} GB x {args.billed_ms:.0f} ms "
          f"per event; worker batches of {args.batch_size}; secret reads cached (not charged per event)")
    out = ROOT / ".local/cost/report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"region": args.region, "prices": prices, "per_event": per_event}, indent=2))
    largest = {kind: {name: {"bytes": size, "item": item} for name, (size, item) in usage.get("largest", {}).items()}
               for kind, usage in meter.usage.items() if kind}
    (out.parent / "largest-items.json").write_text(json.dumps(largest, indent=2, ensure_ascii=False))
    print(f"report: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
