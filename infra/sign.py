#!/usr/bin/env python3
"""Prints the X-Hub-Signature-256 header value Meta would send for a file's exact bytes.

  sign.py FILE [--secret SECRET]    (default: the demo tenant's documented test App Secret)
"""
import argparse
import hashlib
import hmac

DEMO_APP_SECRET = "demo-app-secret"


def signature(body: bytes, secret: str = DEMO_APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--secret", default=DEMO_APP_SECRET)
    args = ap.parse_args()
    with open(args.file, "rb") as f:
        print(signature(f.read(), args.secret))
