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


if __name__ == "__main__":
    unittest.main()
