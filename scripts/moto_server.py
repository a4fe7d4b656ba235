"""moto_server with one request at a time.

DynamoDB evaluates a condition and applies the write atomically; moto's threaded server
does not (two concurrent `attribute_not_exists` puts can both win), which would make the
exact-concurrency tests of the store flaky for moto's sake. Serializing requests behind
one lock restores DynamoDB's guarantee while still accepting many connections.

moto's TransactWriteItems keeps a copy of the table to roll back to, made once per item of
the transaction: 100 copies of the whole table for a full one. One copy per table and
transaction is the same rollback, and keeps a transaction on a table of thousands of items
from holding the server (and every test waiting on it) for seconds.
"""

import argparse
import copy
import threading

import moto.dynamodb.models as dynamodb_models

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

parser = argparse.ArgumentParser()
parser.add_argument("-H", "--host", default="127.0.0.1")
parser.add_argument("-p", "--port", type=int, default=5000)
args = parser.parse_args()


class _OneCopyPerTable:
    """`copy` as moto's DynamoDB backend sees it: within a transaction, a table is copied
    once and that copy handed out again."""

    def __init__(self):
        self.copies = None

    def deepcopy(self, value, memo=None):
        if self.copies is not None and isinstance(value, dynamodb_models.Table):
            if id(value) not in self.copies:
                self.copies[id(value)] = copy.deepcopy(value)
            return self.copies[id(value)]
        return copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


_copies = _OneCopyPerTable()
dynamodb_models.copy = _copies
_transact = dynamodb_models.DynamoDBBackend.transact_write_items


def _transact_with_one_copy(self, transact_items):
    _copies.copies = {}
    try:
        return _transact(self, transact_items)
    finally:
        _copies.copies = None


dynamodb_models.DynamoDBBackend.transact_write_items = _transact_with_one_copy

moto = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialized(environ, start_response):
    with lock:
        # Drain the response inside the lock: the write happens while it is produced.
        return list(moto(environ, start_response))


run_simple(args.host, args.port, serialized, threaded=True)
