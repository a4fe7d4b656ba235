"""moto_server with one request at a time.

DynamoDB evaluates a condition and applies the write atomically; moto's threaded server
does not (two concurrent `attribute_not_exists` puts can both win), which would make the
exact-concurrency tests of the store flaky for moto's sake. Serializing requests behind
one lock restores DynamoDB's guarantee while still accepting many connections.
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

parser = argparse.ArgumentParser()
parser.add_argument("-H", "--host", default="127.0.0.1")
parser.add_argument("-p", "--port", type=int, default=5000)
args = parser.parse_args()

moto = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialized(environ, start_response):
    with lock:
        # Drain the response inside the lock: the write happens while it is produced.
        return list(moto(environ, start_response))


run_simple(args.host, args.port, serialized, threaded=True)
