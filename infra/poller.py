#!/usr/bin/env python3
"""Local stand-in for Lambda's event sources, driven by the sources file stack.py writes.

  poller.py run  --sources FILE --invoke-url http://127.0.0.1:9000
      SQS: long-polls each queue, sends batches shaped exactly like Lambda's SQS events to the
      function through cargo-lambda's Invoke API, deletes what succeeded and leaves reported
      failures to come back after the visibility timeout (SQS itself moves them to the DLQ
      after maxReceiveCount); as many pollers per queue as the source's MaximumConcurrency.
      Schedules: `rate(...)` fires on its period, `cron(...)` in its ScheduleExpressionTimezone
      as EventBridge Scheduler does.
  poller.py fire --sources FILE --invoke-url URL --function LOGICAL_ID
      Invokes a scheduled function once with its configured Input (as EventBridge Scheduler).
"""
import argparse
import calendar
import datetime as dt
import json
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from zoneinfo import ZoneInfo

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
CRON = re.compile(r"cron\((.+)\)")
MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def cron_field(text, low, high, names=None):
    """The values one EventBridge cron field allows: `*`, `?`, `5`, `1-5`, `MON-FRI`, `0/15`, lists."""
    if text in ("*", "?"):
        return set(range(low, high + 1))
    values = set()
    for part in text.upper().split(","):
        tokens = re.split(r"[-/]", part)
        if not all(t in ("*", "") or t.isdigit() or t in (names or {}) for t in tokens):
            raise ValueError(f"cron field '{part}': only numbers, names, ranges, lists and steps are supported locally (not L, W or #)")
        part, _, step = part.partition("/")
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = (names or {}).get(a) or int(a), (names or {}).get(b) or int(b)
        else:
            start = (names or {}).get(part) or int(part)
            end = high if step else start
        values.update(range(start, end + 1, int(step) if step else 1))
    if not values or min(values) < low or max(values) > high:
        raise ValueError(f"cron field '{text}' is outside {low}-{high}")
    return values


def next_cron(expression, timezone, after):
    """The first time after `after` (aware) that `cron(min hour dom month dow year)` fires in `timezone`."""
    match = CRON.fullmatch(expression.strip())
    fields = match.group(1).split() if match else []
    if len(fields) != 6:
        raise ValueError(f"'{expression}' is not cron(minutes hours day-of-month month day-of-week year)")
    minutes, hours = cron_field(fields[0], 0, 59), cron_field(fields[1], 0, 23)
    doms, months = cron_field(fields[2], 1, 31), cron_field(fields[3], 1, 12, MONTHS)
    dows, years = cron_field(fields[4], 1, 7, DAYS), cron_field(fields[5], 1970, 2199)
    zone = ZoneInfo(timezone)
    local = after.astimezone(zone)
    day = local.date()
    for _ in range(366 * 8):
        # EventBridge numbers weekdays 1 (SUN) to 7 (SAT); Python 0 (MON) to 6 (SUN).
        dow = (day.weekday() + 1) % 7 + 1
        if day.year in years and day.month in months and day.day in doms and dow in dows:
            for hour in sorted(hours):
                for minute in sorted(minutes):
                    candidate = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                    if candidate > after:
                        return candidate
        day += dt.timedelta(days=1)
    raise ValueError(f"'{expression}' never fires")


def run_schedule(source, invoke_url):
    expression = source["expression"].strip()
    match = RATE.fullmatch(expression)
    if match:
        seconds = int(match.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
        while not stop.wait(seconds):
            fire(source, invoke_url)
        return
    timezone = source.get("timezone") or "UTC"
    try:
        next_cron(expression, timezone, dt.datetime.now(dt.timezone.utc))
    except ValueError as e:
        print(f"{source['binary']}: {e}; fire it with `poller.py fire`", flush=True)
        return
    while not stop.is_set():
        when = next_cron(expression, timezone, dt.datetime.now(dt.timezone.utc))
        print(f"{source['binary']}: next run {when.isoformat()} ({timezone})", flush=True)
        if stop.wait(max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())):
            return
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
        if source["kind"] == "sqs":
            # As many concurrent batches as the event source's MaximumConcurrency allows.
            for _ in range(max(1, int(source.get("maximum_concurrency", 1)))):
                threads.append(threading.Thread(target=run_sqs, args=(source, args.invoke_url, sqs, region), daemon=True))
        else:
            threads.append(threading.Thread(target=run_schedule, args=(source, args.invoke_url), daemon=True))
    for t in threads:
        t.start()
    print(f"poller: {len(sources)} event source(s), {len(threads)} poller thread(s) -> {args.invoke_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        stop.set()


if __name__ == "__main__":
    main()
