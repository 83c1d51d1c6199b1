"""One change to moto, applied by infra/emulator.py: a DynamoDB transaction's rollback backup
covers only the items the transaction touches.

moto 5.2.1's `DynamoDBBackend.transact_write_items` deep-copies every table a transaction touches,
once per transaction item, before it starts (the rollback backup). Its cost grows with the table:
measured with boto3, a 6-item transaction takes ~10 ms on an empty table, ~210 ms with 2,000
items, ~1,070 ms with 10,000, while a conditional PutItem stays at ~2.6 ms. Every worker here
writes through transactions, so the local stack slowed down as it filled.

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
from typing import Any

PINNED_MOTO = "5.2.1"
ORIGINAL_SHA256 = "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4"


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


def original_sha256() -> str:
    from moto.dynamodb.models import DynamoDBBackend

    source = inspect.getsource(DynamoDBBackend.transact_write_items)
    return hashlib.sha256(source.encode()).hexdigest()


def apply() -> None:
    """Replaces moto's function, after checking it is the one this patch was written against."""
    import moto
    from moto.dynamodb.models import DynamoDBBackend

    found = original_sha256()
    if found != ORIGINAL_SHA256:
        raise MotoChanged(
            f"moto {moto.__version__}: DynamoDBBackend.transact_write_items is not the function "
            f"infra/moto_patch.py replaces (written against moto {PINNED_MOTO}, source sha256 "
            f"{ORIGINAL_SHA256[:12]}…, found {found[:12]}…). Review the patch against the new "
            "source, then update ORIGINAL_SHA256 and PINNED_MOTO."
        )
    DynamoDBBackend.transact_write_items = transact_write_items
