#!/usr/bin/env python3
"""A burst of WhatsApp messages through the running `make dev` stack (webhook → SQS → poller →
worker → DynamoDB), measured from outside as a partner and an operator would see it.

  bench_burst.py [--events 1000] [--senders 200] [--clients 8]

Each event is one signed delivery of one text message; every delivery is posted twice (Meta
retries), half of the pairs at the same moment. The script waits until the queue is drained and
reports: events per second (overall, and for the first and last 200 processed), p50/p95 webhook
answer time, lost events (no idempotency key, so never applied) and doubled ones (a sender with
more than one card, or more timeline entries than events), the emulator's resident memory, and
the emulator's raw rate for the same transactions, measured in the same run, so the ratio shows
our own overhead. A benchmark, not a test: it prints numbers (and exits 1 if anything was lost
or doubled).
"""
import argparse
import concurrent.futures as cf
import json
import os
import pathlib
import statistics
import sys
import threading
import time
import urllib.request
import uuid

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))
from sign import signature  # noqa: E402
import bench_emulator  # noqa: E402

TENANT = "demo"


def read_env(path):
    env = {}
    for line in open(path, encoding="utf-8"):
        if "=" in line and not line.startswith("#"):
            k, v = line.rstrip("\n").split("=", 1)
            env[k] = v
    return env


def delivery(sample, sender, wamid, sent_at):
    body = json.loads(sample)
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = sender
    value["contacts"][0]["profile"]["name"] = f"Burst {sender[-4:]}"
    message = value["messages"][0]
    message.update({"from": sender, "id": wamid, "timestamp": str(sent_at)})
    message["text"]["body"] = f"burst {wamid}"
    return json.dumps(body, ensure_ascii=False).encode()


def post(url, body):
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "content-type": "application/json", "x-hub-signature-256": signature(body)})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        status = response.status
    return status, (time.perf_counter() - start) * 1000


def queue_depth(sqs, url):
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in attributes.values())


def emulator_rss_mb(port):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "emulator.py serve" in cmd or f"moto_server -H 127.0.0.1 -p {port}" in cmd:
            for line in open(f"/proc/{pid}/status", encoding="ascii"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    return float("nan")


def processed_times(ddb, log_table, since_iso):
    """When each message was applied: the worker's success/duplicate records, oldest first."""
    items, start = [], None
    while True:
        args = {"TableName": log_table, "KeyConditionExpression": "pk = :pk AND sk >= :since",
                "ExpressionAttributeValues": {":pk": {"S": f"T#{TENANT}#LOG#whatsapp"}, ":since": {"S": since_iso}}}
        if start:
            args["ExclusiveStartKey"] = start
        out = ddb.query(**args)
        items += [i for i in out["Items"] if i.get("operation", {}).get("S") == "whatsapp.message.process"
                  and i.get("result", {}).get("S") == "success"]
        start = out.get("LastEvaluatedKey")
        if not start:
            return sorted(i["sk"]["S"][:24] for i in items)


def rate(times):
    """Events per second over a list of ISO timestamps (sortable, millisecond precision)."""
    if len(times) < 2:
        return float("nan")
    parse = lambda t: time.mktime(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + t[19:23])  # noqa: E731
    span = parse(times[-1]) - parse(times[0])
    return (len(times) - 1) / span if span > 0 else float("inf")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--senders", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--env-file", default=str(ROOT / ".local/dev/stack.env"))
    ap.add_argument("--lambda-port", default=os.environ.get("LAMBDA_PORT", "9000"))
    args = ap.parse_args()
    if not os.path.exists(args.env_file):
        sys.exit("no local stack is running: start `make dev` in another terminal, then `make bench-burst`")
    env = read_env(args.env_file)
    endpoint = env["AWS_ENDPOINT_URL"]
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=env["AWS_REGION"])
    ddb, sqs = session.client("dynamodb", endpoint_url=endpoint), session.client("sqs", endpoint_url=endpoint)
    url = f"http://127.0.0.1:{args.lambda_port}/lambda-url/whatsapp-inbound/whatsapp"
    sample = (ROOT / "events/whatsapp-inbound/text-message.body.json").read_text(encoding="utf-8")
    run = uuid.uuid4().hex[:6]
    # Senders no earlier run used: +90 544 <run-derived 3 digits> <4 digits>.
    prefix = f"90544{int(run, 16) % 1000:03d}"
    senders = [f"{prefix}{i:04d}" for i in range(args.senders)]
    now = int(time.time())
    events = [(senders[i % args.senders], f"wamid.BURST{run}{i:06d}", now + i) for i in range(args.events)]
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    rss_before = emulator_rss_mb(endpoint.rsplit(":", 1)[1])

    answers, statuses, lock = [], [], threading.Lock()

    def send_pair(index):
        sender, wamid, sent_at = events[index]
        body = delivery(sample, sender, wamid, sent_at)
        if index % 2 == 0:  # half of the pairs at the same moment
            with cf.ThreadPoolExecutor(2) as both:
                results = list(both.map(lambda _: post(url, body), range(2)))
        else:
            results = [post(url, body), post(url, body)]
        with lock:
            for status, ms in results:
                statuses.append(status)
                answers.append(ms)

    print(f"posting {args.events} events x 2 from {args.senders} senders ({args.clients} clients) to {url} ...", flush=True)
    started = time.perf_counter()
    with cf.ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(send_pair, range(args.events)))
    posted = time.perf_counter() - started
    queue = env["WHATSAPP_QUEUE_URL"]
    stable = 0
    while stable < 3:
        time.sleep(1)
        stable = stable + 1 if queue_depth(sqs, queue) == 0 else 0
        if time.perf_counter() - started > 3600:
            sys.exit("the queue did not drain within an hour")
    drained = time.perf_counter() - started

    # What is stored: every event applied once (its entry in the sender's conversation, keyed by
    # the wamid), one card per sender.
    stored, doubled = {}, 0
    pages = ddb.get_paginator("query")
    for sender in senders:
        cards = ddb.query(TableName=env["CRM_TABLE"], KeyConditionExpression="pk = :pk AND begins_with(sk, :c)",
                          ExpressionAttributeValues={":pk": {"S": f"T#{TENANT}#ID#PHONE#+{sender}"}, ":c": {"S": "CARD#"}})["Items"]
        doubled += max(0, len(cards) - 1)
        for page in pages.paginate(TableName=env["CRM_TABLE"], KeyConditionExpression="pk = :pk AND begins_with(sk, :tl)",
                                   ExpressionAttributeValues={":pk": {"S": f"T#{TENANT}#CONV#PHONE#+{sender}"}, ":tl": {"S": "TL#"}}):
            for item in page["Items"]:
                wamid = item["external_id"]["S"]
                stored[wamid] = stored.get(wamid, 0) + 1
    lost = sum(1 for _, wamid, _ in events if wamid not in stored)
    doubled += sum(n - 1 for n in stored.values() if n > 1)
    times = processed_times(ddb, env["LOG_TABLE"], since)
    rss_after = emulator_rss_mb(endpoint.rsplit(":", 1)[1])

    # The emulator's own rate for the same shape of transaction, on the same emulator now.
    raw_table = f"burst-raw-{run}"
    bench_emulator.create_table(ddb, raw_table)
    raw_start = time.perf_counter()
    for n in range(100):
        ddb.transact_write_items(TransactItems=bench_emulator.lead_transaction(raw_table, n))
    raw_rate = 100 / (time.perf_counter() - raw_start)
    ddb.delete_table(TableName=raw_table)

    answers.sort()
    overall = len(times) / drained if drained else float("nan")
    first, last = rate(times[:200]), rate(times[-200:])
    print(json.dumps({
        "events": args.events, "deliveries_posted": len(statuses), "non_200": sum(1 for s in statuses if s != 200),
        "post_seconds": round(posted, 1), "drain_seconds": round(drained, 1),
        "events_per_second": round(overall, 1), "first_200_per_second": round(first, 1), "last_200_per_second": round(last, 1),
        "webhook_ms_p50": round(statistics.median(answers), 1), "webhook_ms_p95": round(answers[int(len(answers) * 0.95)], 1),
        "lost": lost, "doubled": doubled, "applied_records": len(times),
        "emulator_rss_mb_before": round(rss_before, 1), "emulator_rss_mb_after": round(rss_after, 1),
        "emulator_raw_lead_transactions_per_second": round(raw_rate, 1),
        "worker_vs_raw": round(overall / raw_rate, 2) if raw_rate else None,
    }, indent=2))
    flat = abs(last - first) <= 0.2 * first if first == first and first != float("inf") else False
    print(f"throughput first 200 vs last 200: {first:.1f} vs {last:.1f} events/s -> {'flat (within 20%)' if flat else 'NOT flat'}")
    sys.exit(0 if lost == 0 and doubled == 0 else 1)


if __name__ == "__main__":
    main()
