#!/usr/bin/env python3
"""PBX call events through the running `make dev` stack (pbx-call → DynamoDB → pop-up answer),
timed from outside as the PBX sees it.

  bench_pbx.py [--calls 1000] [--clients 4] [--url URL]

A mix a switchboard sees: 60 % keypress 1 from the demo customer, 15 % keypress 3 (a ticket),
10 % keypress 2 (a quote), 10 % unknown callers with keypress 1, 5 % hidden numbers. Every call
has its own call id; every tenth call is delivered twice (a PBX retry), half of those at the
same moment. Reports p50/p95/p99 of the whole request (HTTP round trip through `cargo lambda
watch`, the function, the emulator), then checks the stored outcome: one queue entry per call,
one ticket per keypress-3 call, ticket numbers distinct and without gaps. A benchmark, not a
test: it prints numbers (and exits 1 if anything was lost or doubled).
"""
import argparse
import concurrent.futures as cf
import json
import os
import pathlib
import statistics
import sys
import time
import urllib.error
import urllib.request
import uuid

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN = "pbx_demo_token"
KNOWN = "05321112233"  # the demo customer Mehmet Demir


def read_env(path):
    env = {}
    for line in open(path, encoding="utf-8"):
        if "=" in line and not line.startswith("#"):
            k, v = line.rstrip("\n").split("=", 1)
            env[k] = v
    return env


def post(url, body):
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "content-type": "application/json", "x-pbx-token": TOKEN})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer = response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        status, answer = e.code, json.loads(e.read() or b"{}")
    return time.perf_counter() - started, status, answer


def call_body(run, i):
    share = i % 20
    if share < 12:
        caller, key = KNOWN, "1"
    elif share < 15:
        caller, key = KNOWN, "3"
    elif share < 17:
        caller, key = KNOWN, "2"
    elif share < 19:
        caller, key = f"0533{(i * 7919) % 10_000_000:07d}", "1"
    else:
        caller, key = "anonymous", "1"
    body = {"callUniqueId": f"{run}-{i:05d}", "extension": "911", "agentId": "911",
            "callerId": caller, "keypress": key}
    return json.dumps(body).encode(), key


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--url")
    parser.add_argument("--env-file", default=str(ROOT / ".local/dev/stack.env"))
    args = parser.parse_args()
    env = read_env(args.env_file)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_") or k.endswith("_TABLE")})
    port = os.environ.get("LAMBDA_PORT", "9000")
    url = args.url or f"http://127.0.0.1:{port}/lambda-url/pbx-call/pbx"
    run = uuid.uuid4().hex[:8]
    # Warm the function (and its first TLS-free connection to the emulator) outside the timing.
    post(url, json.dumps({"callUniqueId": f"{run}-warm", "callerId": KNOWN, "keypress": "1"}).encode())

    bodies = [call_body(run, i) for i in range(args.calls)]
    timings, statuses, answers = [], {}, {}
    started = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=args.clients) as pool:
        futures = {}
        for i, (body, _) in enumerate(bodies):
            futures[pool.submit(post, url, body)] = i
            if i % 20 == 0:
                futures[pool.submit(post, url, body)] = i  # a retry at the same moment
        for future in cf.as_completed(futures):
            elapsed, status, answer = future.result()
            timings.append(elapsed)
            statuses[status] = statuses.get(status, 0) + 1
            answers.setdefault(futures[future], []).append(answer)
    for i in range(10, args.calls, 20):  # a retry after the answer
        elapsed, status, answer = post(url, bodies[i][0])
        timings.append(elapsed)
        statuses[status] = statuses.get(status, 0) + 1
        answers.setdefault(i, []).append(answer)
    wall = time.perf_counter() - started

    ms = [t * 1000 for t in timings]
    print(f"{len(timings)} requests ({args.calls} calls, {len(timings) - args.calls} repeated) "
          f"in {wall:.1f} s with {args.clients} clients: {len(timings) / wall:.0f} req/s; statuses {statuses}")
    print(f"whole request: p50 {percentile(ms, 50):.1f} ms, p95 {percentile(ms, 95):.1f} ms, "
          f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms, mean {statistics.mean(ms):.1f} ms")

    problems = []
    repeated_differently = [i for i, a in answers.items()
                            if len(a) > 1 and len({json.dumps(x.get("record"), sort_keys=True) for x in a}) > 1]
    if repeated_differently:
        problems.append(f"{len(repeated_differently)} repeated call(s) answered differently")
    ddb = boto3.client("dynamodb")
    calls, tickets = 0, []
    for i, (_, key) in enumerate(bodies):
        item = ddb.get_item(TableName=env["CRM_TABLE"], Key={
            "pk": {"S": f"T#demo#CALL#{run}-{i:05d}"}, "sk": {"S": f"EV#key:{key}"}}).get("Item")
        if item:
            calls += 1
            opened = item.get("opened", {}).get("M")
            if key == "3" and opened:
                tickets.append(int(opened["number"]["N"]))
    if calls != args.calls:
        problems.append(f"{args.calls - calls} call(s) not in the queue")
    expected = sum(1 for _, key in bodies if key == "3")
    if len(tickets) != expected or len(set(tickets)) != len(tickets):
        problems.append(f"{len(tickets)} ticket(s) ({len(set(tickets))} distinct) for {expected} keypress-3 calls")
    elif tickets and max(tickets) - min(tickets) + 1 != len(tickets):
        problems.append(f"ticket numbers {min(tickets)}..{max(tickets)} have gaps")
    print(f"stored: {calls} queue entries, {len(tickets)} tickets numbered "
          f"{min(tickets) if tickets else '-'}..{max(tickets) if tickets else '-'}; "
          + ("; ".join(problems) if problems else "nothing lost, nothing doubled"))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
