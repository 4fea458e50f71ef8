"""moto_server, applying one request at a time.

DynamoDB applies a conditional write to an item atomically: of two concurrent UpdateItems guarded by
the same condition, one fails. moto's backend has no locking and `moto_server` serves threads, so
both can pass the condition, and the local stack would show double counting that DynamoDB never
produces. This server runs moto's own application behind one lock (connections still accepted
concurrently), which gives the per-item guarantee the product relies on.

It also makes moto's transactions cheaper without changing what they do: see `item_level_rollback`.

Usage: python tools/moto_server.py HOST PORT
"""
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def serialized(app):
    lock = threading.Lock()

    def application(environ, start_response):
        with lock:
            # Build the whole response inside the lock: moto does its work while it is iterated.
            return list(app(environ, start_response))

    return application


def item_level_rollback():
    """moto makes TransactWriteItems all-or-nothing by deep-copying every table a transaction names
    before it runs, and putting the copies back if it fails: O(table) per transaction, so a load
    test slows down as its tables grow. A transaction changes only its own items, so backing up
    those items and restoring them on failure gives the same result at O(items)."""
    import copy as real_copy

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class TablesNotCopied:
        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else real_copy.deepcopy(value, memo)

    models.copy = TablesNotCopied
    original = models.DynamoDBBackend.transact_write_items

    def backups_of(backend, transact_items):
        backups = []
        for entry in transact_items:
            try:
                _, op = next(iter(entry.items()))
                table = backend.tables[op["TableName"]]
                key = op.get("Key") or op["Item"]
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            except (KeyError, StopIteration, AttributeError):
                continue  # moto's own validation rejects the request before changing anything
            backups.append((table, hash_value, range_value, real_copy.deepcopy(table.get_item(hash_value, range_value))))
        return backups

    def transact_write_items(self, transact_items):
        backups = backups_of(self, transact_items)
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(backups):
                if item is None:
                    table.delete_item(hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = item
                else:
                    table.items[hash_value] = item
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items


def main(host, port):
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto_server does: moto builds some URLs from it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    item_level_rollback()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, serialized(app), threaded=True, use_reloader=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]))
