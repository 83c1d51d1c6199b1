#!/usr/bin/env python3
"""`make bench-sync`: the Logo sync against the Rust Logo sandbox and a private emulator.

For each size: a fresh emulator (infra/with-emulator.sh), the demo tenant, a sandbox of N cari
with 3 invoices each and 1,000 products (a bad record every 1,000), then a full sync in one
process (`onecrm-admin logo-sync --here --full`, release build: the same job, adapters and
client logo-sync runs) under /usr/bin/time for its peak RSS. Then, on the same emulator, the
raw BatchWriteItem rate for the items the sync wrote. Prints records per second, peak
RSS and the ratio of our item rate to the raw one: the raw rate is measured by putting the very
items the sync wrote (recorded with ONECRM_RECORD_WRITES) again, in the same groups, into a
fresh table with the CRM table's keys and indexes, timing only the BatchWriteItem calls.

  bench_sync.py --sizes 10000,100000     (runs each size under its own emulator)
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ADMIN = ROOT / "target/release/onecrm-admin"
SANDBOX = ROOT / "target/release/logo-sandbox"
OUT = ROOT / ".local/bench-sync"


def one(size, items, bad_every):
    env = dict(os.environ)
    subprocess.run([str(ADMIN), "seed-demo"], check=True, env=env, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        sandbox = subprocess.Popen([str(SANDBOX), "--customers", str(size), "--items", str(items),
                                    "--bad-every", str(bad_every), "--port", "0", "--port-file", port_file],
                                   stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if os.path.exists(port_file) and open(port_file).read().strip():
                    break
                time.sleep(0.05)
            env["PARTNER_URL_LOGO"] = f"http://127.0.0.1:{open(port_file).read().strip()}"
            env["RUST_LOG"] = "warn"
            record = os.path.join(tmp, "writes.jsonl")
            env["ONECRM_RECORD_WRITES"] = record
            started = time.perf_counter()
            run = subprocess.run(["/usr/bin/time", "-f", "peak_rss_kb=%M", str(ADMIN), "logo-sync", "--tenant", "demo",
                                  "--here", "--full"], env=env, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if run.returncode == 0:
                del env["ONECRM_RECORD_WRITES"]
                raw = subprocess.run([str(ADMIN), "bench-raw-writes", "--copy-to", "bench-raw-copy", "--replay", record],
                                     env=env, capture_output=True, text=True)
        finally:
            sandbox.terminate()
            sandbox.wait()
    if run.returncode != 0:
        sys.exit(f"the sync failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    print(run.stdout)
    print(run.stderr[-2000:], file=sys.stderr)
    took = float(re.search(r"took ([\d.]+) s, (\d+) items written", run.stdout).group(1))
    written = int(re.search(r"took ([\d.]+) s, (\d+) items written", run.stdout).group(2))
    rss_mb = int(re.search(r"peak_rss_kb=(\d+)", run.stderr).group(1)) / 1024
    if raw.returncode != 0:
        sys.exit(f"the raw write measurement failed: {raw.stderr[-2000:]}")
    raw = raw.stdout
    copied = int(re.search(r"raw: (\d+) items", raw).group(1))
    raw_seconds = float(re.search(r"in ([\d.]+) s", raw).group(1)) * written / max(copied, 1)
    phases = {name: float(sec) for name, sec in re.findall(r"(\w+) ([\d.]+)s", re.search(r"time per phase: (.*)", run.stdout).group(1))}
    syncing = sum(phases.get(p, 0.0) for p in ("Customers", "CreateInLogo", "Invoices", "Stock"))
    checking = sum(phases.get(p, 0.0) for p in ("CheckCustomers", "CheckInvoices", "CheckStock"))
    records = size + 3 * size + items
    result = {
        "cari": size, "invoices": 3 * size, "products": items, "seconds": round(took, 2),
        "records_per_second": round(records / took), "items_written": written,
        "items_per_second": round(written / took), "raw_items_per_second": round(written / raw_seconds),
        "ratio_to_raw": round(raw_seconds / took, 3), "peak_rss_mb": round(rss_mb, 1), "wall_seconds": round(wall, 1),
        "sync_seconds": round(syncing, 2), "check_seconds": round(checking, 2),
        "sync_ratio_to_raw": round(raw_seconds / syncing, 3) if syncing else None,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{size}.json").write_text(json.dumps(result, indent=2))
    print(f"{size} cari, {3 * size} invoices, {items} products: {took:.1f} s, {result['records_per_second']} records/s, "
          f"{written} items written at {result['items_per_second']}/s; the emulator's raw rate "
          f"{result['raw_items_per_second']}/s (ours {100 * result['ratio_to_raw']:.0f} % of it with the reconciliation's "
          f"{checking:.1f} s of reads, {100 * (result['sync_ratio_to_raw'] or 0):.0f} % in the {syncing:.1f} s of syncing); "
          f"peak RSS {rss_mb:.1f} MB", flush=True)


def summary(sizes):
    results = [json.loads((OUT / f"{s}.json").read_text()) for s in sizes if (OUT / f"{s}.json").exists()]
    print("\nLogo sync bench")
    print(f"{'cari':>8} {'invoices':>9} {'seconds':>8} {'sync s':>7} {'check s':>8} {'records/s':>10} {'items/s':>8} "
          f"{'raw/s':>7} {'sync %':>7} {'total %':>8} {'RSS MB':>7}")
    for r in results:
        print(f"{r['cari']:>8} {r['invoices']:>9} {r['seconds']:>8} {r['sync_seconds']:>7} {r['check_seconds']:>8} "
              f"{r['records_per_second']:>10} {r['items_per_second']:>8} {r['raw_items_per_second']:>7} "
              f"{100 * r['sync_ratio_to_raw']:>6.0f}% {100 * r['ratio_to_raw']:>7.0f}% {r['peak_rss_mb']:>7}")
    if len(results) >= 2:
        low, high = min(r["peak_rss_mb"] for r in results), max(r["peak_rss_mb"] for r in results)
        print(f"peak RSS spread across sizes: {100 * (high - low) / low:.1f} % (target: within 15 %, under 64 MB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--size", type=int, help="one size, on the emulator of the environment")
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--bad-every", type=int, default=1000)
    args = ap.parse_args()
    if args.size:
        one(args.size, args.items, args.bad_every)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    for size in sizes:
        subprocess.run([str(ROOT / "infra/with-emulator.sh"), sys.executable, __file__, "--size", str(size),
                        "--items", str(args.items), "--bad-every", str(args.bad_every)], check=True)
    summary(sizes)


if __name__ == "__main__":
    main()
