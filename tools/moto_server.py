"""moto_server, applying one request at a time.

DynamoDB applies a conditional write to an item atomically: of two concurrent UpdateItems guarded by
the same condition, one fails. moto's backend has no locking and `moto_server` serves threads, so
both can pass the condition, and the local stack would show double counting that DynamoDB never
produces. This server runs moto's own application behind one lock (connections still accepted
concurrently), which gives the per-item guarantee the product relies on.

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


def main(host, port):
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto_server does: moto builds some URLs from it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, serialized(app), threaded=True, use_reloader=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]))
