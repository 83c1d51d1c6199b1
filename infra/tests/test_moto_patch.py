"""DynamoDB transactions on the launched (patched) emulator behave as moto's own: a failing
condition rolls back every put, update and delete and names each action's reason; a transaction
naming one item twice is refused whole. And the patch refuses a moto it was not written for."""
import os
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import boto3
from botocore.exceptions import ClientError

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, ".."))
import moto_patch  # noqa: E402


class PatchedTransactions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        port_file = os.path.join(cls.dir.name, "port")
        cls.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "emulator.py"), "serve", "--port", "0",
                                     "--port-file", port_file], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{open(port_file, encoding='utf-8').read()}"
        cls.ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-central-1",
                               aws_access_key_id="test", aws_secret_access_key="test")
        cls.table = f"tx-{uuid.uuid4().hex[:8]}"
        cls.ddb.create_table(TableName=cls.table, BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                   {"AttributeName": "sk", "AttributeType": "S"}],
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                        {"AttributeName": "sk", "KeyType": "RANGE"}])

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=10)
        cls.dir.cleanup()

    def key(self, pk):
        return {"pk": {"S": pk}, "sk": {"S": "x"}}

    def get(self, pk):
        return self.ddb.get_item(TableName=self.table, Key=self.key(pk)).get("Item")

    def test_a_failed_condition_rolls_back_every_kind_of_write(self):
        t = self.table
        self.ddb.put_item(TableName=t, Item={**self.key("a"), "n": {"N": "1"}})
        self.ddb.put_item(TableName=t, Item={**self.key("c"), "n": {"N": "3"}})
        with self.assertRaises(ClientError) as caught:
            self.ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": t, "Item": {**self.key("b"), "n": {"N": "2"}}}},
                {"Update": {"TableName": t, "Key": self.key("a"), "UpdateExpression": "SET n = :n",
                            "ExpressionAttributeValues": {":n": {"N": "10"}}}},
                {"Delete": {"TableName": t, "Key": self.key("c")}},
                {"ConditionCheck": {"TableName": t, "Key": self.key("missing"),
                                    "ConditionExpression": "attribute_exists(pk)"}},
            ])
        error = caught.exception.response
        self.assertEqual(error["Error"]["Code"], "TransactionCanceledException")
        codes = [r.get("Code") for r in error["CancellationReasons"]]
        self.assertEqual(codes, ["None", "None", "None", "ConditionalCheckFailed"])
        self.assertIsNone(self.get("b"), "the put was rolled back")
        self.assertEqual(self.get("a")["n"]["N"], "1", "the update was rolled back")
        self.assertEqual(self.get("c")["n"]["N"], "3", "the delete was rolled back")

    def test_a_successful_transaction_applies_everything(self):
        t = self.table
        self.ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": t, "Item": {**self.key("p"), "n": {"N": "1"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": t, "Item": {**self.key("q"), "n": {"N": "2"}}}},
        ])
        self.assertEqual((self.get("p")["n"]["N"], self.get("q")["n"]["N"]), ("1", "2"))

    def test_naming_an_item_twice_is_refused_whole(self):
        t = self.table
        with self.assertRaises(ClientError) as caught:
            self.ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": t, "Item": {**self.key("d"), "n": {"N": "1"}}}},
                {"Put": {"TableName": t, "Item": {**self.key("d"), "n": {"N": "2"}}}},
            ])
        self.assertEqual(caught.exception.response["Error"]["Code"], "ValidationException")
        self.assertIsNone(self.get("d"))


    def test_racing_compare_and_set_transactions_are_isolated(self):
        # Each thread reads the counter, then moves it from that value inside a transaction with
        # a second item, as the PBX ticket counter does; without isolation two of them both win.
        import threading
        counter = f"ctr-{uuid.uuid4().hex[:6]}"
        self.ddb.put_item(TableName=self.table, Item={**self.key(counter), "v": {"N": "0"}})
        won, barrier = [], threading.Barrier(8)

        def race(i):
            barrier.wait()
            for _ in range(50):
                current = self.get(counter)["v"]["N"]
                try:
                    self.ddb.transact_write_items(TransactItems=[
                        {"Update": {"TableName": self.table, "Key": self.key(counter), "UpdateExpression": "SET v = :n",
                                    "ConditionExpression": "v = :c",
                                    "ExpressionAttributeValues": {":n": {"N": str(int(current) + 1)}, ":c": {"N": current}}}},
                        {"Put": {"TableName": self.table, "Item": {**self.key(f"{counter}-{i}-{current}")}}},
                    ])
                    won.append(int(current) + 1)
                    return
                except ClientError:
                    continue

        threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(won), list(range(1, 9)), "each number taken once")
        self.assertEqual(self.get(counter)["v"]["N"], "8")

    def test_a_query_sees_its_whole_partition_in_order_and_pages_as_before(self):
        t = self.table
        for i in range(30):
            self.ddb.put_item(TableName=t, Item={"pk": {"S": "part"}, "sk": {"S": f"{i:03d}"}})
            self.ddb.put_item(TableName=t, Item={"pk": {"S": f"other{i}"}, "sk": {"S": "x"}})
        out = self.ddb.query(TableName=t, KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                             ExpressionAttributeValues={":p": {"S": "part"}, ":s": {"S": "01"}}, ScanIndexForward=False)
        self.assertEqual([i["sk"]["S"] for i in out["Items"]], [f"{i:03d}" for i in range(19, 9, -1)])
        first = self.ddb.query(TableName=t, KeyConditionExpression="pk = :p", Limit=7,
                               ExpressionAttributeValues={":p": {"S": "part"}})
        rest = self.ddb.query(TableName=t, KeyConditionExpression="pk = :p", ExclusiveStartKey=first["LastEvaluatedKey"],
                              ExpressionAttributeValues={":p": {"S": "part"}})
        self.assertEqual(len(first["Items"]) + len(rest["Items"]), 30)
        self.assertEqual(self.ddb.query(TableName=t, KeyConditionExpression="pk = :p",
                                        ExpressionAttributeValues={":p": {"S": "nobody"}})["Count"], 0)
        scanned = self.ddb.scan(TableName=t)["Count"]
        self.assertGreaterEqual(scanned, 60, "a scan still sees the whole table")

    def test_an_index_query_sees_its_partition_sorted_and_paged_as_before(self):
        cls = self
        t = f"gsi-{uuid.uuid4().hex[:8]}"
        cls.ddb.create_table(
            TableName=t, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gpk", "gsk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "gsi", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"},
                                                   {"AttributeName": "gsk", "KeyType": "RANGE"}]}])
        for i in range(20):
            cls.ddb.put_item(TableName=t, Item={"pk": {"S": f"p{i}"}, "sk": {"S": "x"}, "gpk": {"S": "wanted"},
                                                "gsk": {"S": f"{19 - i:03d}"}})
            cls.ddb.put_item(TableName=t, Item={"pk": {"S": f"q{i}"}, "sk": {"S": "x"}, "gpk": {"S": "other"},
                                                "gsk": {"S": f"{i:03d}"}})
            cls.ddb.put_item(TableName=t, Item={"pk": {"S": f"r{i}"}, "sk": {"S": "x"}})
        first = cls.ddb.query(TableName=t, IndexName="gsi", KeyConditionExpression="gpk = :g", Limit=8,
                              ExpressionAttributeValues={":g": {"S": "wanted"}})
        rest = cls.ddb.query(TableName=t, IndexName="gsi", KeyConditionExpression="gpk = :g",
                             ExclusiveStartKey=first["LastEvaluatedKey"], ExpressionAttributeValues={":g": {"S": "wanted"}})
        keys = [i["gsk"]["S"] for i in first["Items"] + rest["Items"]]
        self.assertEqual(keys, [f"{i:03d}" for i in range(20)], "sorted by the index key, every item once")
        ranged = cls.ddb.query(TableName=t, IndexName="gsi", KeyConditionExpression="gpk = :g AND gsk >= :from",
                               ExpressionAttributeValues={":g": {"S": "wanted"}, ":from": {"S": "015"}})
        self.assertEqual(ranged["Count"], 5)
        self.assertEqual(cls.ddb.scan(TableName=t)["Count"], 60)


class PinnedToItsMoto(unittest.TestCase):
    def test_the_patch_refuses_a_changed_function(self):
        self.assertEqual(moto_patch.original_sha256(), moto_patch.ORIGINAL_SHA256,
                         "moto changed: review infra/moto_patch.py")
        saved = moto_patch.ORIGINAL_SHA256
        try:
            moto_patch.ORIGINAL_SHA256 = "0" * 64
            with self.assertRaises(moto_patch.MotoChanged):
                moto_patch.apply()
        finally:
            moto_patch.ORIGINAL_SHA256 = saved


if __name__ == "__main__":
    unittest.main()
