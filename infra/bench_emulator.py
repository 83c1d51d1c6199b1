#!/usr/bin/env python3
"""The emulator's cost of one 6-item DynamoDB transaction as its table fills: 0, 10k and 100k
items, on the project's launcher (infra/emulator.py, with infra/moto_patch.py) and, for
comparison, on plain moto (`moto_server`, skipped past --plain-max items: it deep-copies the
table on every transaction item). A benchmark, not a test: it prints numbers.

  bench_emulator.py [--sizes 0,10000,100000] [--plain-max 10000] [--samples 20]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))


def start(plain, workdir):
    port_file = os.path.join(workdir, f"port-{uuid.uuid4().hex[:6]}")
    if plain:
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    else:
        cmd = [sys.executable, os.path.join(HERE, "emulator.py"), "serve", "--port", "0", "--port-file", port_file]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    if not plain:
        while not os.path.exists(port_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        port = int(open(port_file, encoding="utf-8").read())
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="eu-central-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    while time.monotonic() < deadline:
        try:
            client.list_tables()
            break
        except Exception:
            time.sleep(0.1)
    return proc, client


def create_table(client, name):
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])


def fill(client, table, start, end):
    """Items shaped like the CRM table's (a few hundred bytes), 25 per BatchWriteItem."""
    for base in range(start, end, 25):
        batch = [{"PutRequest": {"Item": {"pk": {"S": f"T#bench#CARD#{i}"}, "sk": {"S": "PROFILE"},
                                          "display_name": {"S": f"Müşteri {i}"}, "phones": {"L": [{"S": f"+90533{i:07d}"}]},
                                          "notes": {"S": "x" * 200}}}} for i in range(base, min(base + 25, end))]
        client.batch_write_item(RequestItems={table: batch})


def lead_transaction(table, n):
    """Six actions, like a new WhatsApp lead: idempotency key, claim, identity, card, timeline, note."""
    wamid, card = f"wamid.BENCH{n}{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    phone = f"+90532{n:07d}"
    put = lambda pk, sk, **extra: {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": sk}, **extra}}}  # noqa: E731
    items = [put(f"T#bench#IDEM#whatsapp.message#{wamid}", "IDEM"), put(f"T#bench#ID#PHONE#{phone}", "CLAIM"),
             put(f"T#bench#ID#PHONE#{phone}", f"CARD#{card}"), put(f"T#bench#CARD#{card}", "PROFILE"),
             put(f"T#bench#CARD#{card}", f"TL#2026-11-25T10:00:00Z#{wamid}"), put(f"T#bench#CARD#{card}", f"NOTE#{wamid}")]
    for i in (0, 1, 3):
        items[i]["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
    return items


_serial = iter(range(10**7))


def measure(client, table, samples):
    """Medians: a 6-item transaction, and a Query of one identity partition (the worker's look-up)."""
    tx, query = [], []
    for _ in range(samples):
        n = next(_serial)
        items = lead_transaction(table, n)
        start = time.perf_counter()
        client.transact_write_items(TransactItems=items)
        tx.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        client.query(TableName=table, KeyConditionExpression="pk = :p AND begins_with(sk, :c)",
                     ExpressionAttributeValues={":p": {"S": f"T#bench#ID#PHONE#+90532{n:07d}"}, ":c": {"S": "CARD#"}})
        query.append((time.perf_counter() - start) * 1000)
    return statistics.median(tx), statistics.median(query)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="0,10000,100000")
    ap.add_argument("--plain-max", type=int, default=10000)
    ap.add_argument("--samples", type=int, default=20)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'table items':>12}{'patched: tx ms':>16}{'query ms':>10}{'plain moto: tx ms':>20}{'query ms':>10}"
          f"   medians of {args.samples} (6-item transaction; Query of one partition)")
    with tempfile.TemporaryDirectory() as workdir:
        runs = {}
        for plain in (False, True):
            proc, client = start(plain, workdir)
            try:
                table, filled = f"bench-{uuid.uuid4().hex[:6]}", 0
                create_table(client, table)
                for size in sizes:
                    if plain and size > args.plain_max:
                        break
                    fill(client, table, filled, size)
                    filled = size
                    runs[(plain, size)] = measure(client, table, args.samples if not plain or size < 5000 else 3)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        for size in sizes:
            (ptx, pq), plain = runs[(False, size)], runs.get((True, size))
            plain_text = f"{plain[0]:>20.1f}{plain[1]:>10.1f}" if plain else f"{'(skipped: > ' + str(args.plain_max) + ')':>30}"
            print(f"{size:>12}{ptx:>16.1f}{pq:>10.1f}{plain_text}")


if __name__ == "__main__":
    main()
