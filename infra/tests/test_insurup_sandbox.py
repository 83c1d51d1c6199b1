"""The InsurUp sandbox `make dev` starts: agent-user login, rotating refresh tokens, expiring
access tokens, the REST reads, and signed webhook sends (bare lowercase hex HMAC-SHA256)."""
import hashlib
import hmac
import http.server
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sandboxes"))
sys.path.insert(0, os.path.dirname(__file__))
import insurup  # noqa: E402
import sandbox_http  # noqa: E402


class InsurUpSandbox(sandbox_http.SandboxTest):
    @classmethod
    def serve(cls):
        return insurup.serve(0, token_seconds=600)

    def call(self, path, body=None, token=None):
        return sandbox_http.call(self.url + path, body, token)

    def login(self):
        status, body = self.call("/api/authentication:agent-user/login",
                                 {"email": insurup.EMAIL, "password": insurup.PASSWORD})
        self.assertEqual(status, 200, body)
        return body

    def test_login_reads_and_a_wrong_password_is_refused(self):
        tokens = self.login()
        self.assertFalse(tokens["requiresTwoFactor"])
        self.assertEqual(tokens["expiresIn"], 600)
        status, customer = self.call(f"/api/customers/{insurup.CUSTOMERS[0]['customerId']}", token=tokens["accessToken"])
        self.assertEqual((status, customer["firstName"]), (200, "Ayşe"))
        status, policy = self.call("/api/policies/pol-1001", token=tokens["accessToken"])
        self.assertEqual(policy["insuredCustomerId"], insurup.CUSTOMERS[0]["customerId"])
        self.assertEqual(self.call("/api/customers/x", token="at-nope")[0], 401)
        status, _ = self.call("/api/authentication:agent-user/login", {"email": insurup.EMAIL, "password": "x"})
        self.assertEqual(status, 401)

    def test_refresh_tokens_rotate_and_access_tokens_expire(self):
        tokens = self.login()
        status, fresh = self.call("/api/authentication:agent-user/refresh", {"refreshToken": tokens["refreshToken"]})
        self.assertEqual(status, 200)
        self.assertNotEqual(fresh["refreshToken"], tokens["refreshToken"])
        status, _ = self.call("/api/authentication:agent-user/refresh", {"refreshToken": tokens["refreshToken"]})
        self.assertEqual(status, 401, "a spent refresh token never works again")
        self.call("/sandbox/expire", {})
        self.assertEqual(self.call("/api/policies/pol-1001", token=fresh["accessToken"])[0], 401)

    def test_send_signs_the_exact_body_as_insurup_does(self):
        seen = {}

        class Target(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                seen["body"] = self.rfile.read(int(self.headers["content-length"]))
                seen["headers"] = dict(self.headers)
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        target = http.server.HTTPServer(("127.0.0.1", 0), Target)
        threading.Thread(target=target.serve_forever, daemon=True).start()
        try:
            status, answer = self.call("/sandbox/send", {
                "url": f"http://127.0.0.1:{target.server_address[1]}/insurup/demo", "secret": "s3",
                "event": {"$event": "policy.created", "policyId": "p"}, "delivery": "d-1"})
        finally:
            target.shutdown()
            target.server_close()
        self.assertEqual((status, answer["status"]), (200, 200))
        headers = {k.lower(): v for k, v in seen["headers"].items()}
        self.assertEqual(headers["x-webhook-signature"], hmac.new(b"s3", seen["body"], hashlib.sha256).hexdigest())
        self.assertEqual((headers["x-webhook-event"], headers["x-webhook-delivery"]), ("policy.created", "d-1"))


if __name__ == "__main__":
    unittest.main()
