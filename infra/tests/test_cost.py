"""The arithmetic `make cost` prices events with: item sizes, KB rounding, transaction doubling,
GSI copies, read units."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import cost  # noqa: E402


class CostArithmetic(unittest.TestCase):
    def test_item_size_counts_names_and_values(self):
        self.assertEqual(cost.item_size({"pk": {"S": "abc"}}), 2 + 3)
        self.assertEqual(cost.item_size({"n": {"N": "12345"}}), 1 + 4)
        self.assertEqual(cost.item_size({"ok": {"BOOL": True}}), 2 + 1)
        self.assertEqual(cost.item_size({"m": {"M": {"a": {"S": "x"}}}}), 1 + 3 + (1 + 1 + 1))
        self.assertEqual(cost.item_size({"l": {"L": [{"S": "ğ"}]}}), 1 + 3 + (2 + 1), "UTF-8 bytes")

    def test_write_units_round_up_per_started_kb_double_in_transactions_and_copy_per_gsi(self):
        self.assertEqual(cost.write_units(1), 1)
        self.assertEqual(cost.write_units(1024), 1)
        self.assertEqual(cost.write_units(1025), 2)
        self.assertEqual(cost.write_units(900, transactional=True), 2)
        self.assertEqual(cost.write_units(900, gsi_copies=2), 3)
        self.assertEqual(cost.write_units(1500, transactional=True, gsi_copies=1), 2 * 2 + 2)
        self.assertEqual(cost.gsi_copies({"pk": {}, "gsi1pk": {}, "gsi2pk": {}}), 2)

    def test_a_keys_only_index_copies_only_the_keys_and_still_costs_a_unit(self):
        item = {"pk": {"S": "p"}, "sk": {"S": "s"}, "gsi1pk": {"S": "g"}, "gsi1sk": {"S": "h"},
                "gsi2pk": {"S": "e"}, "gsi2sk": {"S": "f"}, "payload": {"S": "x" * 1500}}
        whole, sizes = cost.index_copies(item, {"gsi1pk": "KEYS_ONLY"})
        self.assertEqual((whole, sizes), (1, [2 + 1 + 2 + 1 + 6 + 1 + 6 + 1]))
        # 2 units for the 1.5 KB item, 2 for its ALL copy in gsi2, 1 for the keys in gsi1.
        self.assertEqual(cost.write_units(cost.item_size(item), gsi_copies=whole, copy_sizes=sizes), 5)
        self.assertEqual(cost.index_copies({"pk": {"S": "p"}}, {}), (0, []))

    def test_read_units_per_started_4kb_half_when_eventually_consistent(self):
        self.assertEqual(cost.read_units(100), 0.5)
        self.assertEqual(cost.read_units(4097, consistent=True), 2)


if __name__ == "__main__":
    unittest.main()
