"""The local event-source poller against the emulator, with a stand-in function that fails
some records: successes are deleted, reported failures come back after the visibility timeout,
and SQS moves them to the DLQ after maxReceiveCount, as with Lambda's event source mapping."""
import http.server
import json
import os
import sys
import threading
import time
import unittest
import uuid

import boto3

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import poller  # noqa: E402


class FakeFunction(http.server.BaseHTTPRequestHandler):
    events = []

    def do_POST(self):
        event = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeFunction.events.append(event)
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if "poison" in r["body"]]
        body = json.dumps({"batchItemFailures": failures}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@unittest.skipUnless(os.environ.get("AWS_ENDPOINT_URL"), "needs the emulator (make test)")
class PollerTest(unittest.TestCase):
    def test_partial_failures_are_retried_then_dead_lettered(self):
        sqs = boto3.client("sqs")
        name = f"poller-{uuid.uuid4().hex[:8]}"
        dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": "1", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for body in ["ok-1", "ok-2", "poison-1"]:
            sqs.send_message(QueueUrl=queue, MessageBody=body, MessageAttributes={"trace_id": {"DataType": "String", "StringValue": "t-1"}})

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeFunction)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        source = {"kind": "sqs", "binary": "fake", "queue_url": queue, "queue_arn": arn, "batch_size": 10,
                  "maximum_batching_window_seconds": 0, "report_batch_item_failures": True}
        poller.stop.clear()
        worker = threading.Thread(target=poller.run_sqs, args=(source, f"http://127.0.0.1:{server.server_address[1]}", sqs, "eu-central-1"), daemon=True)
        worker.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                dead = sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0).get("Messages", [])
                if dead:
                    break
                time.sleep(0.3)
        finally:
            poller.stop.set()
            worker.join(10)
            server.shutdown()
            server.server_close()
        self.assertEqual([m["Body"] for m in dead], ["poison-1"])
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        self.assertEqual(int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]), 0)
        record = FakeFunction.events[0]["Records"][0]
        # The event has Lambda's shape, so the Rust worker can deserialize it.
        self.assertEqual(record["eventSource"], "aws:sqs")
        self.assertEqual(record["eventSourceARN"], arn)
        self.assertIn("ApproximateReceiveCount", record["attributes"])
        self.assertEqual(record["messageAttributes"]["trace_id"]["stringValue"], "t-1")
        poison_deliveries = sum(1 for e in FakeFunction.events for r in e["Records"] if r["body"] == "poison-1")
        self.assertEqual(poison_deliveries, 2, "delivered maxReceiveCount times, then dead-lettered")


class FailedIdsTest(unittest.TestCase):
    records = [{"messageId": "a"}, {"messageId": "b"}]

    def test_reported_failures_only(self):
        self.assertEqual(poller.failed_ids(True, {"batchItemFailures": [{"itemIdentifier": "b"}]}, self.records, True), {"b"})

    def test_invalid_identifier_fails_the_whole_batch(self):
        self.assertEqual(poller.failed_ids(True, {"batchItemFailures": [{"itemIdentifier": ""}]}, self.records, True), {"a", "b"})
        self.assertEqual(poller.failed_ids(True, {"batchItemFailures": [{"itemIdentifier": "zz"}]}, self.records, True), {"a", "b"})

    def test_function_error_fails_everything(self):
        self.assertEqual(poller.failed_ids(False, {"errorType": "Panic"}, self.records, True), {"a", "b"})

    def test_without_partial_reporting_success_deletes_all(self):
        self.assertEqual(poller.failed_ids(True, {"batchItemFailures": [{"itemIdentifier": "b"}]}, self.records, False), set())


if __name__ == "__main__":
    unittest.main()
