"""The Graph sandbox `make dev` starts: Graph's lead and error shapes, stored leads, scripted errors."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sandboxes"))
sys.path.insert(0, os.path.dirname(__file__))
import graph  # noqa: E402
import sandbox_http  # noqa: E402


class GraphSandbox(sandbox_http.SandboxTest):
    @classmethod
    def serve(cls):
        return graph.serve(0)

    def call(self, path, body=None, token="EAAB"):
        return sandbox_http.call(self.url + path, body, token)

    def test_samples_are_served_with_only_the_asked_fields(self):
        status, lead = self.call("/v21.0/1234567890123456789?fields=field_data,campaign_name")
        self.assertEqual(status, 200)
        self.assertEqual(set(lead), {"id", "field_data", "campaign_name"})
        status, lead = self.call("/v21.0/1234567890123456792?fields=is_organic,campaign_name")
        self.assertEqual((status, lead["is_organic"]), (200, True), "the organic sample has no campaign")
        self.assertNotIn("campaign_name", lead)

    def test_unknown_leads_and_missing_tokens_answer_graph_errors(self):
        status, body = self.call("/v21.0/42")
        self.assertEqual((status, body["error"]["code"]), (400, 100))
        status, body = self.call("/v21.0/1234567890123456789", token=None)
        self.assertEqual((status, body["error"]["code"]), (400, 104))

    def test_a_scripted_error_answers_n_times_then_the_lead(self):
        self.assertEqual(self.call("/sandbox/leads", {"id": "555", "field_data": []})[0], 200)
        self.assertEqual(self.call("/sandbox/errors", {"leadgen_id": "555", "code": 500, "times": 1})[0], 200)
        status, body = self.call("/v21.0/555")
        self.assertEqual((status, body["error"]["code"]), (500, 1))
        self.assertEqual(self.call("/v21.0/555")[0], 200)
        self.call("/sandbox/errors", {"leadgen_id": "555", "code": 190})
        for _ in range(2):
            status, body = self.call("/v21.0/555")
            self.assertEqual((status, body["error"]["code"], body["error"]["error_subcode"]), (400, 190, 463))
        self.assertEqual(self.call("/sandbox/errors", {"leadgen_id": "555", "code": 7})[0], 400)


class WhatsAppSends(sandbox_http.SandboxTest):
    """Sends as Meta answers them, and the statuses posted back signed."""

    @classmethod
    def serve(cls):
        import hashlib
        import hmac
        import http.server
        import threading
        received = cls.received = []

        class Webhook(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
                received.append((self.headers["x-hub-signature-256"] == expected, graph.json.loads(body)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        return graph.serve(0, samples=False, webhook=f"http://127.0.0.1:{hook.server_address[1]}/", app_secret="s3cret")

    def send(self, to, body=None, token="EAAB"):
        message = body or {"type": "template", "template": {"name": "randevu_hatirlatma", "language": {"code": "tr"},
                           "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ayşe"}]}]}}
        return sandbox_http.call(self.url + "/v21.0/106540352242922/messages",
                                 dict(message, messaging_product="whatsapp", to=to), token)

    def test_an_accepted_send_is_followed_by_signed_statuses(self):
        status, body = self.send("905331112233")
        self.assertEqual(status, 200)
        wamid = body["messages"][0]["id"]
        import time
        for _ in range(50):
            if len([r for r in self.received if r[1]["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] == wamid]) == 3:
                break
            time.sleep(0.1)
        ours = [r for r in self.received if r[1]["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] == wamid]
        self.assertEqual([r[1]["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] for r in ours],
                         ["sent", "delivered", "read"])
        self.assertTrue(all(signed for signed, _ in ours))

    def test_each_error_class_answers_metas_code(self):
        def code(to, body=None, token="EAAB"):
            status, answer = self.send(to, body, token)
            return status, answer["error"]["code"]
        self.assertEqual(code("905330000000"), (400, 131026))
        self.assertEqual(code("905331112233", token="expired-token"), (401, 190))
        self.assertEqual(code("905331112233", {"type": "template", "template": {"name": "yok", "language": {"code": "tr"}}}),
                         (404, 132001))
        self.assertEqual(code("905331112233", {"type": "template", "template": {"name": "teklif_hazir", "language": {"code": "tr"}}}),
                         (400, 132000))
        for scripted, status in ((131047, 400), (130429, 429), (131056, 400)):
            self.assertEqual(sandbox_http.call(self.url + "/sandbox/errors", {"to": "905339998877", "code": scripted, "times": 1}, None)[0], 200)
            self.assertEqual(code("905339998877", {"type": "text", "text": {"body": "Merhaba"}}), (status, scripted))
        self.assertEqual(self.send("905339998877", {"type": "text", "text": {"body": "Merhaba"}})[0], 200)


if __name__ == "__main__":
    unittest.main()
