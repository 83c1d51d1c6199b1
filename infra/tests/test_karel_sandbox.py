"""The Karel sandbox `make dev` starts: PpOpportunities create, get, update (custom-field value
ids), delete, the data-locked refusal and the bearer token."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sandboxes"))
sys.path.insert(0, os.path.dirname(__file__))
import karel  # noqa: E402
import sandbox_http  # noqa: E402

PATH = "/api/v1/PpOpportunities"


class KarelSandbox(sandbox_http.SandboxTest):
    @classmethod
    def serve(cls):
        return karel.serve(0)

    def call(self, path, body=None, method=None, token=karel.TOKEN):
        return sandbox_http.call(self.url + path, body, token, method)

    def test_create_update_keeps_value_ids_then_delete(self):
        status, created = self.call(PATH, {"Description": "Kasko", "RefCustomerCardId": 10148, "RefRepresentativeCardId": 8224,
                                           "OpportunityPrice": 50000.5, "Tags": "onecrm:opp-1",
                                           "CustomFields": [{"CustomFieldId": 22, "CustomFieldOptionId": 5}]})
        self.assertEqual(status, 201)
        opportunity = created["Result"]
        status, got = self.call(f"{PATH}/{opportunity}")
        fields = got["Result"]["CustomFields"]
        self.assertEqual((status, fields[0]["CustomFieldFieldLabel"]), (200, "Proje Tipi"))
        value_id = fields[0]["CustomFieldValueId"]
        status, _ = self.call(f"{PATH}/{opportunity}", {"Description": "Kasko", "RefCustomerCardId": 10148, "RefRepresentativeCardId": 8224,
                                                         "CustomFields": [{"CustomFieldValueId": value_id, "CustomFieldId": 22, "CustomFieldOptionId": 6}]},
                              method="PUT")
        self.assertEqual(status, 200)
        fields = self.call(f"{PATH}/{opportunity}")[1]["Result"]["CustomFields"]
        self.assertEqual([f["CustomFieldValueId"] for f in fields], [value_id], "updated, not added")
        self.assertEqual(self.call(f"{PATH}/{opportunity}?deleteCollection=false", method="DELETE")[0], 200)
        self.assertEqual(self.call(f"{PATH}/{opportunity}")[0], 404)

    def test_locked_data_and_a_missing_token_are_refused(self):
        status, created = self.call(PATH, {"Description": "x", "RefCustomerCardId": 1, "RefRepresentativeCardId": 2})
        opportunity = created["Result"]
        self.call("/sandbox/lock", {"id": opportunity})
        status, answer = self.call(f"{PATH}/{opportunity}", {"Description": "y", "RefCustomerCardId": 1, "RefRepresentativeCardId": 2}, method="PUT")
        self.assertEqual(status, 400)
        self.assertIn("kilitli", answer["ResultMessage"])
        self.assertEqual(self.call(f"{PATH}/{opportunity}", method="DELETE")[0], 400)
        self.assertEqual(self.call(f"{PATH}/{opportunity}", token=None)[0], 401)


if __name__ == "__main__":
    unittest.main()
