#!/usr/bin/env python3
"""`make bench-poll`: the Euromsg Express nightly poll against the Rust Express sandbox and a
private emulator.

For each size N: a fresh emulator (infra/with-emulator.sh), the demo tenant, customer cards for
the first N/10 member addresses, a sandbox of N members (a bad address every 1,000) whose sent
campaign reports on N/10 of them, then two polls in one process each (`onecrm-admin
express-poll --here`, release build: the same job, adapters and client the function runs)
under /usr/bin/time for their peak RSS: the first night (every consent set, every result
written) and the next (nothing changed, nothing written).

  bench_poll.py --sizes 10000,100000     (runs each size under its own emulator)
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
SANDBOX = ROOT / "target/release/express-sandbox"
OUT = ROOT / ".local/bench-poll"


def night(env):
    run = subprocess.run(["/usr/bin/time", "-f", "peak_rss_kb=%M", str(ADMIN), "express-poll", "--tenant", "demo", "--here"],
                         env=env, capture_output=True, text=True)
    if run.returncode != 0 or "took" not in run.stdout:
        sys.exit(f"the poll failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    print(run.stdout)
    took, written = re.search(r"took ([\d.]+) s, (\d+) items written", run.stdout).groups()
    report = {k: int(v) for k, v in re.findall(r"(members read|consents set|timeline entries written|report rows) (\d+)", run.stdout)}
    return {"seconds": float(took), "items_written": int(written),
            "peak_rss_mb": round(int(re.search(r"peak_rss_kb=(\d+)", run.stderr).group(1)) / 1024, 1), **report}


def one(size, bad_every):
    env = dict(os.environ)
    subprocess.run([str(ADMIN), "seed-demo"], check=True, env=env, stdout=subprocess.DEVNULL)
    cards = size // 10
    started = time.perf_counter()
    subprocess.run([str(ADMIN), "seed-express-cards", "--tenant", "demo", "--count", str(cards)], check=True, env=env)
    print(f"{cards} cards seeded in {time.perf_counter() - started:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        sandbox = subprocess.Popen([str(SANDBOX), "--members", str(size), "--bad-every", str(bad_every),
                                    "--report-rows", str(cards), "--port", "0", "--port-file", port_file],
                                   stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if os.path.exists(port_file) and open(port_file).read().strip():
                    break
                time.sleep(0.05)
            env["PARTNER_URL_EXPRESS"] = f"http://127.0.0.1:{open(port_file).read().strip()}"
            env["RUST_LOG"] = "warn"
            first = night(env)
            second = night(env)
        finally:
            sandbox.terminate()
            sandbox.wait()
    result = {"members": size, "cards": cards, "first": first, "second": second,
              "members_per_second": round(size / first["seconds"])}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{size}.json").write_text(json.dumps(result, indent=2))
    print(f"{size} members ({cards} on cards): first night {first['seconds']:.1f} s ({result['members_per_second']} members/s, "
          f"{first['items_written']} items written, peak RSS {first['peak_rss_mb']} MB); next night {second['seconds']:.1f} s, "
          f"{second['items_written']} items written, peak RSS {second['peak_rss_mb']} MB", flush=True)


def summary(sizes):
    results = [json.loads((OUT / f"{s}.json").read_text()) for s in sizes if (OUT / f"{s}.json").exists()]
    print("\nExpress poll bench")
    print(f"{'members':>8} {'cards':>7} {'1st s':>7} {'members/s':>10} {'items':>8} {'RSS MB':>7} {'2nd s':>7} {'items':>6} {'RSS MB':>7}")
    for r in results:
        f, s = r["first"], r["second"]
        print(f"{r['members']:>8} {r['cards']:>7} {f['seconds']:>7} {r['members_per_second']:>10} {f['items_written']:>8} "
              f"{f['peak_rss_mb']:>7} {s['seconds']:>7} {s['items_written']:>6} {s['peak_rss_mb']:>7}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--size", type=int, help="one size, on the emulator of the environment")
    ap.add_argument("--bad-every", type=int, default=1000)
    args = ap.parse_args()
    if args.size:
        one(args.size, args.bad_every)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    for size in sizes:
        subprocess.run([str(ROOT / "infra/with-emulator.sh"), sys.executable, __file__, "--size", str(size),
                        "--bad-every", str(args.bad_every)], check=True)
    summary(sizes)


if __name__ == "__main__":
    main()
