#!/usr/bin/env python3
"""Local stand-in for Lambda's event sources, driven by the sources file stack.py writes.

  poller.py run  --sources FILE --invoke-url http://127.0.0.1:9000
      SQS: long-polls each queue, sends batches shaped exactly like Lambda's SQS events to the
      function through cargo-lambda's Invoke API, deletes what succeeded and leaves reported
      failures to come back after the visibility timeout (SQS itself moves them to the DLQ
      after maxReceiveCount). Schedules: `rate(...)` expressions fire on their period.
  poller.py fire --sources FILE --invoke-url URL --function LOGICAL_ID
      Invokes a scheduled function once with its configured Input (as EventBridge Scheduler).
"""
import argparse
import json
import re
import signal
import threading
import time
import urllib.error
import urllib.request

import boto3

stop = threading.Event()


def invoke(invoke_url, binary, payload, timeout=900):
    """POSTs to the Lambda Invoke API; returns (ok, parsed response)."""
    request = urllib.request.Request(f"{invoke_url}/2015-03-31/functions/{binary}/invocations",
                                     data=json.dumps(payload).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            function_error = response.headers.get("X-Amz-Function-Error")
    except urllib.error.HTTPError as e:
        return False, {"error": f"HTTP {e.code}", "body": e.read()[:500].decode(errors="replace")}
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return False, {"error": str(e)}
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        return False, {"error": "response is not JSON"}
    if function_error or (isinstance(parsed, dict) and "errorType" in parsed):
        return False, parsed
    return True, parsed


def sqs_record(message, source, region):
    attributes = dict(message.get("Attributes", {}))
    message_attributes = {
        name: {"stringValue": a.get("StringValue"), "binaryValue": None, "stringListValues": [],
               "binaryListValues": [], "dataType": a["DataType"]}
        for name, a in message.get("MessageAttributes", {}).items()
    }
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": attributes, "messageAttributes": message_attributes, "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": source["queue_arn"], "awsRegion": region}


def failed_ids(ok, response, records, report_failures):
    """The message ids Lambda would leave on the queue for this invocation result."""
    all_ids = {r["messageId"] for r in records}
    if not ok:
        return all_ids
    if not report_failures or not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures") or []
    ids = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
    # Lambda treats an empty or unknown identifier as a failure of the whole batch.
    if any(not i or i not in all_ids for i in ids):
        return all_ids
    return ids


def run_sqs(source, invoke_url, sqs, region):
    name = source["binary"]
    batch_size = min(int(source["batch_size"]), 10_000)
    window = int(source["maximum_batching_window_seconds"])
    backoff = 1.0
    while not stop.is_set():
        messages, deadline = [], time.monotonic() + window
        try:
            while len(messages) < batch_size and not stop.is_set():
                wait = 5 if not messages else max(0, min(5, int(deadline - time.monotonic())))
                got = sqs.receive_message(QueueUrl=source["queue_url"], MaxNumberOfMessages=min(10, batch_size - len(messages)),
                                          WaitTimeSeconds=wait, AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
                messages.extend(got)
                if not got or time.monotonic() >= deadline:
                    break
        except Exception as e:  # the emulator restarting: try again shortly
            print(f"{name}: receive failed ({e}); retrying", flush=True)
            stop.wait(backoff)
            continue
        if not messages:
            continue
        records = [sqs_record(m, source, region) for m in messages]
        ok, response = invoke(invoke_url, name, {"Records": records})
        if not ok and "error" in response and "HTTP" not in response.get("error", ""):
            # Function not up yet (still compiling): the messages come back after the timeout.
            print(f"{name}: not reachable ({response['error']}); {len(records)} record(s) will be retried", flush=True)
            stop.wait(backoff)
            backoff = min(backoff * 2, 30)
            continue
        backoff = 1.0
        failed = failed_ids(ok, response, records, source["report_batch_item_failures"])
        done = [m for m in messages if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            sqs.delete_message_batch(QueueUrl=source["queue_url"], Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i:i + 10])])
        detail = "" if ok else f" (invocation failed: {json.dumps(response)[:200]})"
        print(f"{name}: {len(records)} record(s), {len(failed)} failed{detail}", flush=True)


RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")


def run_schedule(source, invoke_url):
    match = RATE.fullmatch(source["expression"].strip())
    if not match:
        print(f"{source['binary']}: '{source['expression']}' fires only with `poller.py fire`", flush=True)
        return
    seconds = int(match.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    while not stop.wait(seconds):
        fire(source, invoke_url)


def fire(source, invoke_url):
    payload = source["input"]
    payload = json.loads(payload) if isinstance(payload, str) else payload
    ok, response = invoke(invoke_url, source["binary"], payload)
    print(f"{source['binary']}: schedule fired, {'ok' if ok else 'failed'}: {json.dumps(response)[:200]}", flush=True)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "fire"])
    ap.add_argument("--sources", required=True)
    ap.add_argument("--invoke-url", default="http://127.0.0.1:9000")
    ap.add_argument("--function", help="logical id of the scheduled function (fire)")
    args = ap.parse_args()
    with open(args.sources, encoding="utf-8") as f:
        sources = json.load(f)

    if args.command == "fire":
        matches = [s for s in sources if s["kind"] == "schedule" and s["function_logical_id"] == args.function]
        if not matches:
            raise SystemExit(f"no schedule for {args.function}")
        raise SystemExit(0 if all(fire(s, args.invoke_url) for s in matches) else 1)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sqs = boto3.client("sqs")
    region = sqs.meta.region_name
    threads = []
    for source in sources:
        target = run_sqs if source["kind"] == "sqs" else run_schedule
        extra = (args.invoke_url, sqs, region) if source["kind"] == "sqs" else (args.invoke_url,)
        threads.append(threading.Thread(target=target, args=(source, *extra), daemon=True))
    for t in threads:
        t.start()
    print(f"poller: {len(threads)} event source(s) -> {args.invoke_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        stop.set()


if __name__ == "__main__":
    main()
