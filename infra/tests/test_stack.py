"""stack.py resolves template.yaml the way CloudFormation would, for the local stack."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import stack  # noqa: E402

TEMPLATE = os.path.join(os.path.dirname(__file__), "..", "..", "template.yaml")


class StackTest(unittest.TestCase):
    def setUp(self):
        self.stack = stack.Stack(stack.load_template(TEMPLATE), "http://127.0.0.1:1", "unit")

    def test_functions_get_the_templates_environment(self):
        env = self.stack.env()
        self.assertEqual(env["CRM_TABLE"], "onecrm-unit-crm")
        self.assertEqual(env["LOG_TABLE"], "onecrm-unit-integration-log")
        self.assertEqual(env["WHATSAPP_QUEUE_URL"], "http://127.0.0.1:1/123456789012/onecrm-unit-whatsapp-events")
        self.assertEqual(env["MAX_RECEIVE_COUNT"], "5")
        self.assertTrue(int(env["LOG_RETENTION_DAYS"]) <= 180)

    def test_each_functions_own_variables_are_scoped_to_it(self):
        env = self.stack.env()
        self.assertEqual(env["WHATSAPP_WORKER__MAX_RECEIVE_COUNT"], "5")
        self.assertEqual(env["WHATSAPP_INBOUND__WHATSAPP_QUEUE_URL"], env["WHATSAPP_QUEUE_URL"])
        self.assertNotIn("WHATSAPP_WORKER__WHATSAPP_QUEUE_URL", env, "only the function that sets it")

    def test_a_variable_two_functions_set_differently_is_only_scoped(self):
        fn = lambda value: {"Type": "AWS::Serverless::Function", "Metadata": {"BuildProperties": {"Binary": value}},  # noqa: E731
                            "Properties": {"Environment": {"Variables": {"MODE": value}}}}
        template = stack.load_template(TEMPLATE)
        template["Resources"].update({"A": fn("fn-a"), "B": fn("fn-b")})
        env = stack.Stack(template, "http://127.0.0.1:1", "unit").env()
        self.assertEqual((env["FN_A__MODE"], env["FN_B__MODE"]), ("fn-a", "fn-b"))
        self.assertNotIn("MODE", env)

    def test_sqs_event_sources_come_from_the_template(self):
        sources = {s["binary"]: s for s in self.stack.sources() if s["kind"] == "sqs"}
        self.assertEqual(sorted(sources), ["express-member-poll", "insurup-worker", "karel-push", "logo-sync", "meta-lead-worker",
                                           "web-form-worker", "whatsapp-worker"])
        self.assertEqual(sources["express-member-poll"]["batch_size"], 1)
        self.assertEqual(sources["logo-sync"]["batch_size"], 1)
        self.assertEqual(sources["meta-lead-worker"]["maximum_concurrency"], 5)
        # The WhatsApp worker has two sources: inbound events, and sends (paced, 2 at once).
        by_queue = {s["queue_arn"].rsplit(":", 1)[1]: s for s in self.stack.sources()
                    if s["kind"] == "sqs" and s["binary"] == "whatsapp-worker"}
        self.assertEqual(sorted(by_queue), ["onecrm-unit-whatsapp-events", "onecrm-unit-whatsapp-sends"])
        source = by_queue["onecrm-unit-whatsapp-events"]
        self.assertEqual(source["batch_size"], 10)
        self.assertTrue(source["report_batch_item_failures"])
        self.assertEqual(source["maximum_concurrency"], 10)
        sends = by_queue["onecrm-unit-whatsapp-sends"]
        self.assertTrue(sends["report_batch_item_failures"])
        self.assertEqual(sends["maximum_concurrency"], 2)

    def test_the_nightly_schedules_run_at_two_and_half_past_two_istanbul_time(self):
        schedules = [s for s in self.stack.sources() if s["kind"] == "schedule"]
        self.assertEqual(sorted((s["binary"], s["expression"], s["timezone"]) for s in schedules),
                         [("express-member-poll", "cron(30 2 * * ? *)", "Europe/Istanbul"),
                          ("logo-sync", "cron(0 2 * * ? *)", "Europe/Istanbul")])
        self.assertTrue(all(s["input"] == '{"action": "fan_out"}' for s in schedules))
        env = self.stack.env()
        self.assertEqual(env["LOGO_SYNC__LOGO_QUEUE_URL"], "http://127.0.0.1:1/123456789012/onecrm-unit-logo-jobs")
        self.assertEqual(env["EXPRESS_MEMBER_POLL__EXPRESS_QUEUE_URL"], "http://127.0.0.1:1/123456789012/onecrm-unit-express-jobs")

    def test_short_tags_and_sub(self):
        self.assertEqual(self.stack.resolve({"Fn::Sub": "${AWS::Partition}:${Stage}:${WhatsAppEventsQueue.QueueName}"}),
                         "aws:unit:onecrm-unit-whatsapp-events")
        self.assertEqual(self.stack.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}), "a-unit")


if __name__ == "__main__":
    unittest.main()
