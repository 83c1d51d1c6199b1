#!/usr/bin/env python3
"""Cold start and memory of each function, as Lambda would see its init phase.

For every run: a loopback Lambda Runtime API is started, the release `bootstrap` is spawned
with the usual Lambda environment (and the stack's, so SDK clients are built as in AWS), and
the time from just before spawn to its first `GET /2018-06-01/runtime/invocation/next` is the
cold start. Peak RSS (VmHWM) is read while the process waits on that poll. Budgets: < 15 ms,
< 16 MB.

  bench.py --bins whatsapp-inbound,whatsapp-worker [--runs 20] [--env-file FILE]
"""
import argparse
import http.server
import json
import os
import pathlib
import statistics
import subprocess
import threading
import time

COLD_START_BUDGET_MS = 15.0
RSS_BUDGET_MB = 16.0
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
            # Hold the long poll open, as Lambda does between invocations.
            self.server.release.wait(10)
        self.send_response(204)
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


def one_run(binary, name, stack_env):
    api = RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = {"PATH": "/usr/bin:/bin", **stack_env,
           "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
           "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
           "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
           "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "_HANDLER": "bootstrap",
           "AWS_REGION": stack_env.get("AWS_REGION", "eu-central-1"), "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench"}
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.polled.wait(10):
            raise RuntimeError(f"{name} never polled the Runtime API: {proc.stderr.read(2000) if proc.poll() is not None else ''}")
        cold_ms = (api.first_poll - start) * 1000
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        api.release.set()
        api.shutdown()
        api.server_close()
    return cold_ms, rss


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bins", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--env-file", default=str(ROOT / ".local/dev/stack.env"))
    ap.add_argument("--lambda-dir", default=str(ROOT / "target/lambda"))
    args = ap.parse_args()
    stack_env = read_env(args.env_file) or {
        # Without a provisioned stack: the same variables the template sets.
        "CRM_TABLE": "onecrm-bench-crm", "LOG_TABLE": "onecrm-bench-integration-log", "LOG_RETENTION_DAYS": "90",
        "TENANT_SECRET_PREFIX": "onecrm/tenants/", "MAX_RECEIVE_COUNT": "5", "RUST_LOG": "info",
        "WHATSAPP_QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/123456789012/onecrm-bench-whatsapp-events"}
    results = {}
    print(f"{'function':<22}{'runs':>5}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'peak RSS MB':>13}{'zip MB':>8}  verdict")
    for name in args.bins.split(","):
        binary = pathlib.Path(args.lambda_dir) / name / "bootstrap"
        one_run(str(binary), name, stack_env)  # warm the page cache, as a provisioned sandbox has it
        runs = [one_run(str(binary), name, stack_env) for _ in range(args.runs)]
        cold = [c for c, _ in runs]
        rss = max(r for _, r in runs)
        zipped = binary.with_name("bootstrap.zip")
        size = (zipped if zipped.exists() else binary).stat().st_size / 1e6
        ok = statistics.median(cold) < COLD_START_BUDGET_MS and rss < RSS_BUDGET_MB
        results[name] = {"runs": len(cold), "cold_start_ms": {"median": round(statistics.median(cold), 2),
                         "p95": round(percentile(cold, 95), 2), "max": round(max(cold), 2)},
                         "peak_rss_mb": round(rss, 2), "artifact_mb": round(size, 2), "within_budget": ok}
        print(f"{name:<22}{len(cold):>5}{statistics.median(cold):>11.2f}{percentile(cold, 95):>9.2f}{max(cold):>9.2f}"
              f"{rss:>13.2f}{size:>8.2f}  {'ok' if ok else 'OVER BUDGET'} (< {COLD_START_BUDGET_MS:.0f} ms, < {RSS_BUDGET_MB:.0f} MB)")
    out = ROOT / ".local/bench/results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
