#!/usr/bin/env python3
"""The project's launcher for the moto emulator, used by `make dev`, `make test` and benchmarks.

  emulator.py serve [--host 127.0.0.1] [--port 0] [--port-file FILE]

Binds the listening socket itself and only then hands it to moto's WSGI app, so the port it
reports is already ours: no other process can take it between choosing and binding (port 0 picks
a free one). The port is written to --port-file once the socket is bound. SIGTERM/SIGINT stop it.

It also applies infra/moto_patch.py (DynamoDB transactions in constant time, whatever the table
size), refusing to start if moto's patched function has changed.
"""
import argparse
import os
import signal
import socket
import sys
import threading

from werkzeug.serving import WSGIRequestHandler, make_server


class PromptHandler(WSGIRequestHandler):
    """Answers at loopback speed. The AWS SDK for Rust writes a request's headers and body in two
    segments without TCP_NODELAY; with the server delaying its ACK, each request with a body
    stalled ~40 ms (Nagle meets delayed ACK) — most of a webhook's time on the local stack.
    Acknowledging at once (TCP_QUICKACK) and not delaying our own small writes (TCP_NODELAY)
    removes the stall; boto3 never saw it because urllib3 sets TCP_NODELAY itself."""

    def setup(self):
        super().setup()
        for option in ("TCP_NODELAY", "TCP_QUICKACK"):
            if hasattr(socket, option):
                try:
                    self.connection.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), 1)
                except OSError:
                    pass

    def parse_request(self):
        # The kernel falls back to delayed ACKs after a while: ask again before each request body.
        if hasattr(socket, "TCP_QUICKACK"):
            try:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass
        return super().parse_request()


def bind(host, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sys.exit(f"emulator: cannot listen on {host}:{port}: {e.strerror} (another make dev? set MOTO_PORT)")
    sock.listen(128)
    return sock


def write_port(path, port):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(port))
    os.replace(tmp, path)


def serve(host, port, port_file=None):
    sock = bind(host, port)
    port = sock.getsockname()[1]
    os.environ["MOTO_PORT"] = str(port)
    # Imported after MOTO_PORT is set: moto builds queue URLs from it.
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    import moto_patch

    try:
        moto_patch.apply()
    except moto_patch.MotoChanged as e:
        sys.exit(f"emulator: {e}")

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=PromptHandler, fd=sock.fileno())
    stop = lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if port_file:
        write_port(port_file, port)
    print(f"emulator: moto on http://{host}:{port}", flush=True)
    server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--port-file")
    args = ap.parse_args()
    serve(args.host, args.port, args.port_file)


if __name__ == "__main__":
    main()
