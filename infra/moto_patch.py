"""Two changes to moto, applied by infra/emulator.py, so the emulator's cost per request does not
grow with the table: a transaction's rollback backup covers only the items it touches, and a
base-table Query reads only its own partition.

moto 5.2.1's `DynamoDBBackend.transact_write_items` deep-copies every table a transaction touches,
once per transaction item, before it starts (the rollback backup). Its cost grows with the table:
measured with boto3, a 6-item transaction takes ~10 ms on an empty table, ~210 ms with 2,000
items, ~1,070 ms with 10,000, while a conditional PutItem stays at ~2.6 ms. Every worker here
writes through transactions, so the local stack slowed down as it filled.

moto's `Table.query` on the base table filters `all_items()` — every item of the table, sorted —
by hash key, so each identity look-up cost ~65 ms once the local CRM table held 3,600 items. The
patch narrows `all_items()` to the queried partition for the duration of that one query (a
thread-local, so a concurrent Scan still sees the whole table); the rest of moto's query
(conditions, sorting, paging) runs unchanged. An index query is narrowed the same way to the
items whose index hash attributes match (one pass, no sort): moto's sort of a million-item
table before filtering took over a minute per index query (the Logo sync's bench).

Third, isolation: moto takes no locks, so two transactions (or a transaction and a conditional
PutItem) running on two server threads can both pass a condition the other one's write would
have failed: two calls racing for a ticket counter both got the same number through the local
stack (1 in 150 under four clients). DynamoDB serializes them (the loser is cancelled with a
condition failure or a `TransactionConflict`). The patch runs every DynamoDB write, transactional
or single-item, under one lock, which gives that isolation; reads are not locked.

The replacement below is moto's function with only the backup changed: before the first write it
copies each touched item (or notes its absence), once per key, and a rollback puts those back
(deleting the items that did not exist). Conditions, cancellation reasons, the 100-item limit and
the one-operation-per-item rule are moto's own code, unchanged. The original's source is pinned
by its SHA-256: if moto changes the function, the launcher stops and says so, so this file is
reviewed against the new version instead of silently diverging from it.
"""
import copy
import hashlib
import inspect
import threading
from typing import Any

PINNED_MOTO = "5.2.1"
ORIGINAL_SHA256 = "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4"
# Table.query and Table.all_items, whose behaviour the partition narrowing relies on.
QUERY_SHA256 = "002b4d00be6df07cf37f6cbe0132e5eb89455ae12a8e79b23db3fb492450f21e"
ALL_ITEMS_SHA256 = "c80d2ee3c896acd0cab6ca35aaeae3ab3fb65858933f8a3403d4e027c240f31d"

_narrow = threading.local()
# DynamoDB's write isolation (see above): one write at a time.
_writes = threading.RLock()


def _isolated(function):
    def write(*args, **kwargs):
        with _writes:
            return function(*args, **kwargs)

    write.__wrapped__ = function
    return write


class MotoChanged(RuntimeError):
    pass


def _key_of(backend, op_type, op):
    if op_type == "Put":
        table = backend.get_table(op["TableName"])
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key
    return op["Key"]


def transact_write_items(self, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    # The backup: each touched item once (None: it did not exist), not whole tables.
    backup: dict[tuple[str, str], tuple[str, dict[str, Any], Any]] = {}
    for item in transact_items:
        try:
            op_type, op = next(iter(item.items()))
            table_name = op.get("TableName")
            if not table_name or table_name not in self.tables:
                continue
            key = _key_of(self, op_type, op)
        except Exception:  # malformed: moto's loop below reports it as before
            continue
        ident = (table_name, str(dict(sorted(key.items()))))
        if ident not in backup:
            backup[ident] = (table_name, key, copy.deepcopy(self.get_item(table_name, key)))

    def rollback() -> None:
        for table_name, key, original in backup.values():
            if original is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.put_item(table_name, original.to_json()["Attributes"])

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression, expression_attribute_names, expression_attribute_values
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type == "Put":
                self.put_item(table_name, op["Item"], condition_expression=condition_expression,
                              expression_attribute_names=expression_attribute_names,
                              expression_attribute_values=expression_attribute_values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, condition_expression=condition_expression,
                                 expression_attribute_names=expression_attribute_names,
                                 expression_attribute_values=expression_attribute_values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 condition_expression=condition_expression,
                                 expression_attribute_names=expression_attribute_names,
                                 expression_attribute_values=expression_attribute_values)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore
        except Exception as e:  # noqa: E722 as moto: other failures become cancellation reasons
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore

    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


def _source_sha256(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def original_sha256() -> str:
    from moto.dynamodb.models import DynamoDBBackend

    return _source_sha256(DynamoDBBackend.transact_write_items)


def _narrowed(original_all_items):
    def all_items(self):
        if getattr(_narrow, "table", None) is self:
            return list(_narrow.items)
        return original_all_items(self)

    return all_items


def _equal(found, wanted):
    # moto's DynamoType compares only with another DynamoType, never with a missing attribute.
    return found is not None and found == wanted


def _index_partition(table, conditions):
    """The items whose index hash attributes equal `conditions`, in no order (moto sorts them)."""
    found = []
    for partition in table.items.values():
        for item in (partition.values() if table.range_key_attr else [partition]):
            if all(_equal(item.attrs.get(name), value) for name, value in conditions):
                found.append(item)
    return found


def _partition_query(original_query, signature):
    def query(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        hash_key = bound.arguments.get("hash_key")
        conditions = list(bound.arguments.get("hash_key_conditions") or [])
        if bound.arguments.get("index_name") is None and hash_key is not None and self.range_key_attr:
            partition = self.items.get(hash_key)  # .get: never insert into moto's defaultdict
            items = list(partition.values()) if partition else []
        elif bound.arguments.get("index_name") is not None and conditions:
            # An index query: moto sorts the whole table before filtering it (a minute at a
            # million items); hand it only the items of the queried index partition.
            items = _index_partition(self, conditions)
        else:
            return original_query(self, *args, **kwargs)
        _narrow.table, _narrow.items = self, items
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _narrow.table, _narrow.items = None, []

    return query


def apply() -> None:
    """Replaces moto's functions, after checking they are the ones this patch was written against."""
    import moto
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    for name, function, pinned in [
        ("DynamoDBBackend.transact_write_items", DynamoDBBackend.transact_write_items, ORIGINAL_SHA256),
        ("Table.query", Table.query, QUERY_SHA256),
        ("Table.all_items", Table.all_items, ALL_ITEMS_SHA256),
    ]:
        found = _source_sha256(function)
        if found != pinned:
            raise MotoChanged(
                f"moto {moto.__version__}: {name} is not the function infra/moto_patch.py was "
                f"written against (moto {PINNED_MOTO}, source sha256 {pinned[:12]}…, found "
                f"{found[:12]}…). Review the patch against the new source, then update the pins."
            )
    DynamoDBBackend.transact_write_items = _isolated(transact_write_items)
    for name in ("put_item", "update_item", "delete_item", "batch_write_item"):
        if hasattr(DynamoDBBackend, name):
            setattr(DynamoDBBackend, name, _isolated(getattr(DynamoDBBackend, name)))
    Table.query = _partition_query(Table.query, inspect.signature(Table.query))
    Table.all_items = _narrowed(Table.all_items)
