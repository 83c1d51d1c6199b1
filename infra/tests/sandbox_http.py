"""The one way the sandbox tests call a sandbox: JSON in, (status, JSON) out, errors included."""
import json
import threading
import unittest
import urllib.error
import urllib.request


def call(url, body=None, token=None, method=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class SandboxTest(unittest.TestCase):
    """Runs the sandbox `serve()` returns on a free port for the test class (`self.url`)."""

    @classmethod
    def serve(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.server, cls.sandbox = cls.serve()
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}"

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
