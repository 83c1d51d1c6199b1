#!/usr/bin/env python3
"""Cold start and memory of each function, as Lambda would see its init phase, and memory after
real work.

For every run: a loopback Lambda Runtime API is started, the release `bootstrap` is spawned
with the usual Lambda environment (and the stack's, so SDK clients are built as in AWS), and
the time from just before spawn to its first `GET /2018-06-01/runtime/invocation/next` is the
cold start. Peak RSS (VmHWM) is read while the process waits on that poll.

With --warm N (against a running emulator with the demo tenant seeded: `make bench` does both),
each function then serves N real invocations on one process (pbx-call: N calls of the demo
customer, every third opening a ticket): whatsapp-inbound gets N signed
deliveries (20 senders, so new leads and known cards), whatsapp-worker the N envelopes they
queued; peak RSS is read after the last one. Budgets: cold start < 8 ms, RSS < 11 MB.

  bench.py --bins whatsapp-inbound,whatsapp-worker [--runs 20] [--warm 100] [--env-file FILE]
"""
import argparse
import http.server
import json
import os
import pathlib
import statistics
import subprocess
import sys
import threading
import time

COLD_START_BUDGET_MS = 8.0
RSS_BUDGET_MB = 11.0
ROOT = pathlib.Path(__file__).resolve().parent.parent


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.first_poll = None
        self.polled = threading.Event()
        self.release = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/2018-06-01/runtime/invocation/next"):
            if self.server.first_poll is None:
                self.server.first_poll = time.perf_counter()
                self.server.polled.set()
            events = getattr(self.server, "events", None)
            if events:
                request_id, event = events.pop(0)
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-central-1:123456789012:function:bench")
                self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-bench-{request_id}")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            # Hold the long poll open, as Lambda does between invocations.
            self.server.release.wait(30)
        self.send_response(204)
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if "/invocation/" in self.path:
            outcome = "error" if self.path.endswith("/error") else "response"
            self.server.responses.append((outcome, json.loads(body or b"null")))
            if len(self.server.responses) >= self.server.expected:
                self.server.done.set()
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def read_env(path):
    env = {}
    if path and os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def lambda_env(name, api, stack_env):
    return {"PATH": "/usr/bin:/bin", **stack_env,
           "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
           "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
           "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
           "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "_HANDLER": "bootstrap",
           "AWS_REGION": stack_env.get("AWS_REGION", "eu-central-1"), "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": stack_env.get("AWS_SECRET_ACCESS_KEY", "bench"),
           **({"AWS_SESSION_TOKEN": "bench"} if "AWS_ENDPOINT_URL" not in stack_env else {})}


def one_run(binary, name, stack_env):
    api = RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = lambda_env(name, api, stack_env)
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.polled.wait(10):
            raise RuntimeError(f"{name} never polled the Runtime API: {proc.stderr.read(2000) if proc.poll() is not None else ''}")
        cold_ms = (api.first_poll - start) * 1000
        rss = peak_rss_mb(proc.pid)
    finally:
        stop(proc, api)
    return cold_ms, rss


def stop(proc, api):
    proc.kill()
    proc.wait()
    api.release.set()
    api.shutdown()
    api.server_close()


def warm_run(binary, name, stack_env, events):
    """Serves `events` to one process and returns (peak RSS MB, responses, seconds)."""
    api = RuntimeApi()
    api.events = [(f"req-{i}", e) for i, e in enumerate(events)]
    api.responses, api.expected, api.done = [], len(events), threading.Event()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    proc = subprocess.Popen([binary], env=lambda_env(name, api, stack_env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    start = time.perf_counter()
    try:
        if not api.done.wait(300):
            raise RuntimeError(f"{name}: {len(api.responses)} of {len(events)} invocations answered")
        seconds = time.perf_counter() - start
        time.sleep(0.2)
        rss = peak_rss_mb(proc.pid)
    finally:
        stop(proc, api)
    return rss, api.responses, seconds


def inbound_events(n):
    """N signed deliveries of the committed text sample: 20 senders, unique wamids."""
    sys.path.insert(0, str(ROOT / "infra"))
    from sign import signature  # noqa: E402
    sample = json.loads((ROOT / "events/whatsapp-inbound/text-message.json").read_text(encoding="utf-8"))
    events = []
    for i in range(n):
        body = json.loads(sample["body"])
        value = body["entry"][0]["changes"][0]["value"]
        sender = f"9053312{i % 20:05d}"
        value["contacts"][0]["wa_id"] = sender
        value["messages"][0].update({"from": sender, "id": f"wamid.BENCH{time.time_ns()}{i}"})
        text = json.dumps(body, ensure_ascii=False)
        event = json.loads(json.dumps(sample))
        event["body"] = text
        event["headers"]["x-hub-signature-256"] = signature(text.encode())
        events.append(event)
    return events


def worker_events(stack_env, n, queue_variable="WHATSAPP_QUEUE_URL"):
    """The envelopes a webhook queued (on `queue_variable`), one SQS record per invocation."""
    import boto3
    sys.path.insert(0, str(ROOT / "infra"))
    from poller import sqs_record  # noqa: E402
    sqs = boto3.client("sqs", endpoint_url=stack_env["AWS_ENDPOINT_URL"], region_name=stack_env["AWS_REGION"],
                       aws_access_key_id="test", aws_secret_access_key="test")
    url = stack_env[queue_variable]
    source = {"queue_arn": "arn:aws:sqs:eu-central-1:123456789012:bench"}
    records = []
    while len(records) < n:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"],
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        records.extend(sqs_record(m, source, stack_env["AWS_REGION"]) for m in got)
    return [{"Records": [r]} for r in records[:n]]


def pbx_events(n):
    """N seed-JSON calls with the demo token: the demo customer, keypresses 1, 1, 3 (a ticket)."""
    sample = json.loads((ROOT / "events/pbx-call/seed-keypress-1.json").read_text(encoding="utf-8"))
    run = time.time_ns()
    events = []
    for i in range(n):
        event = json.loads(json.dumps(sample))
        body = json.loads(event["body"])
        body.update({"callUniqueId": f"BENCH-{run}-{i}", "keypress": "3" if i % 3 == 2 else "1"})
        event["body"] = json.dumps(body)
        events.append(event)
    return events


def warm(name, binary, stack_env, n):
    if name == "whatsapp-inbound":
        events = inbound_events(n)
        ok = lambda r: r[0] == "response" and r[1].get("statusCode") == 200  # noqa: E731
    elif name == "pbx-call":
        events = pbx_events(n)
        ok = lambda r: r[0] == "response" and r[1].get("statusCode") == 200  # noqa: E731
    elif name == "whatsapp-worker":
        events = worker_events(stack_env, n)
        ok = lambda r: r[0] == "response" and not r[1].get("batchItemFailures")  # noqa: E731
    else:
        return None
    if len(events) < n:
        raise RuntimeError(f"{name}: only {len(events)} events to replay (run whatsapp-inbound first)")
    rss, responses, seconds = warm_run(binary, name, stack_env, events)
    failed = [r for r in responses if not ok(r)]
    if failed:
        raise RuntimeError(f"{name}: {len(failed)} of {n} warm invocations failed, e.g. {json.dumps(failed[0])[:400]}")
    return rss, seconds


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bins", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--env-file", default=str(ROOT / ".local/dev/stack.env"))
    ap.add_argument("--lambda-dir", default=str(ROOT / "target/lambda"))
    ap.add_argument("--warm", type=int, default=0, help="invocations against the running stack (0: skip)")
    args = ap.parse_args()
    stack_env = read_env(args.env_file) or {
        # Without a provisioned stack: the same variables the template sets.
        "CRM_TABLE": "onecrm-bench-crm", "LOG_TABLE": "onecrm-bench-integration-log", "LOG_RETENTION_DAYS": "90",
        "TENANT_SECRET_PREFIX": "onecrm/tenants/", "APP_SECRET_PREFIX": "onecrm/apps/", "MAX_RECEIVE_COUNT": "5",
        "RUST_LOG": "info", "RAW_EVENT_TABLE": "onecrm-bench-raw-events",
        "WHATSAPP_QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/123456789012/onecrm-bench-whatsapp-events"}
    results = {}
    print(f"{'function':<22}{'runs':>5}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'peak RSS MB':>13}{'zip MB':>8}"
          f"{'RSS after warm':>16}  verdict")
    for name in args.bins.split(","):
        binary = pathlib.Path(args.lambda_dir) / name / "bootstrap"
        one_run(str(binary), name, stack_env)  # warm the page cache, as a provisioned sandbox has it
        runs = [one_run(str(binary), name, stack_env) for _ in range(args.runs)]
        cold = [c for c, _ in runs]
        rss = max(r for _, r in runs)
        zipped = binary.with_name("bootstrap.zip")
        size = (zipped if zipped.exists() else binary).stat().st_size / 1e6
        warmed = warm(name, str(binary), stack_env, args.warm) if args.warm else None
        warm_rss = warmed[0] if warmed else None
        ok = statistics.median(cold) < COLD_START_BUDGET_MS and max(rss, warm_rss or 0) < RSS_BUDGET_MB
        results[name] = {"runs": len(cold), "cold_start_ms": {"median": round(statistics.median(cold), 2),
                         "p95": round(percentile(cold, 95), 2), "max": round(max(cold), 2)},
                         "peak_rss_mb": round(rss, 2), "artifact_mb": round(size, 2), "within_budget": ok}
        if warmed:
            results[name]["warm"] = {"invocations": args.warm, "peak_rss_mb": round(warm_rss, 2),
                                     "seconds": round(warmed[1], 2)}
        warm_text = f"{warm_rss:.2f} ({args.warm} inv)" if warmed else "-"
        print(f"{name:<22}{len(cold):>5}{statistics.median(cold):>11.2f}{percentile(cold, 95):>9.2f}{max(cold):>9.2f}"
              f"{rss:>13.2f}{size:>8.2f}{warm_text:>16}  {'ok' if ok else 'OVER BUDGET'} "
              f"(< {COLD_START_BUDGET_MS:.0f} ms, < {RSS_BUDGET_MB:.0f} MB)")
    out = ROOT / ".local/bench/results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
