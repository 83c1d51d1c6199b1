"""What every partner sandbox shares: a JSON answer, the command line (`--port`, `--port-file`)
and a clean stop on TERM (make dev's shutdown)."""
import argparse
import json
import pathlib
import signal
import threading


def answer(handler, status, body=None, content_type="application/json; charset=utf-8"):
    """Sends `body` as JSON (no body when None) with its length."""
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    handler.send_response(status)
    if body is not None:
        handler.send_header("content-type", content_type)
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def run(doc, serve, banner, add_arguments=None):
    """Parses `--port`/`--port-file` (and the sandbox's own options), serves until TERM."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    if add_arguments:
        add_arguments(ap)
    args = ap.parse_args()
    server, sandbox = serve(args)
    port = server.server_address[1]
    if args.port_file:
        pathlib.Path(args.port_file).write_text(str(port))
    print(banner(port, sandbox), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()
