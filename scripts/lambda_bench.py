#!/usr/bin/env python3
"""A minimal Lambda Runtime API emulator that measures a function binary, for
scripts/bench-coldstart.sh. Standard library only.

  lambda_bench.py coldstart --binary B --request 'GET /path' [--header k=v]... [--runs 20]
      Each run: a fresh emulator with one queued API Gateway v2 event, then exec B; the time
      from exec to the moment B posts that invocation's response. B is killed after each run.

  lambda_bench.py serve --binary B --request 'GET /path' [--request ...] [--requests 10000]
      Exec B once and feed it N invocations, one at a time as Lambda does, cycling through
      the requests; then read B's peak resident memory (VmHWM) from /proc.

Both print one JSON object on stdout. B gets a Lambda-like environment: the variables
Lambda sets, the AWS_* ones of this shell (endpoint, credentials, region), and --env K=V
(TABLE_NAME, CURSOR_SECRET, ...).
"""

import argparse
import copy
import http.server
import json
import os
import pathlib
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "tests" / "fixtures" / "apigw-v2-list-contacts.json"
PREFIX = "/2018-06-01/runtime"


class Emulator:
    """The Runtime API for one process: a queue of events and the responses posted back."""

    def __init__(self):
        self.events = queue.Queue()
        self.responses = {}
        self.arrived = threading.Condition()
        self.closed = False
        emulator = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per answer, sent at once: no Nagle wait in the measured path.
            disable_nagle_algorithm = True
            wbufsize = 1 << 16

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self.reply(404)
                while True:
                    try:
                        request_id, body = emulator.events.get(timeout=0.2)
                        break
                    except queue.Empty:
                        if emulator.closed:
                            return self.reply(503)
                deadline = int(time.time() * 1000) + 30_000
                self.reply(
                    200,
                    body,
                    [
                        ("Content-Type", "application/json"),
                        ("Lambda-Runtime-Aws-Request-Id", request_id),
                        ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                        ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench"),
                        ("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"),
                    ],
                )

            def do_POST(self):
                at = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = self.path[len(PREFIX) :].strip("/").split("/")
                if parts[:1] == ["init"]:
                    key, kind = "init", "error"
                elif len(parts) == 3 and parts[0] == "invocation":
                    key, kind = parts[1], parts[2]
                else:
                    return self.reply(404)
                with emulator.arrived:
                    emulator.responses[key] = (kind, body, at)
                    emulator.arrived.notify_all()
                self.reply(202, b"{}", [("Content-Type", "application/json")])

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A killed function leaves a long poll on a closed socket: nothing to report.
        self.server.handle_error = lambda request, address: None
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def invoke(self, event):
        request_id = str(uuid.uuid4())
        self.events.put((request_id, event))
        return request_id

    def wait(self, request_id, process, timeout=60):
        """The (kind, body, arrival time) of `request_id`'s answer."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while request_id not in self.responses and "init" not in self.responses:
                if process.poll() is not None:
                    raise SystemExit(f"the function exited with {process.returncode} before answering")
                if time.monotonic() > deadline:
                    raise SystemExit("the function did not answer in time")
                self.arrived.wait(0.05)
            if "init" in self.responses:
                raise SystemExit(f"the function failed to start: {self.responses['init'][1].decode(errors='replace')}")
            return self.responses.pop(request_id)

    def close(self):
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


def event_for(request, headers):
    """An API Gateway v2 event for 'METHOD /path?query' (optionally with ' BODY')."""
    method, _, rest = request.partition(" ")
    target, _, body = rest.partition(" ")
    path, _, query = target.partition("?")
    event = copy.deepcopy(json.loads(TEMPLATE.read_text()))
    event["routeKey"] = "$default"
    event["rawPath"] = path
    event["rawQueryString"] = query
    params = dict(pair.split("=", 1) for pair in query.split("&") if "=" in pair)
    if params:
        event["queryStringParameters"] = params
    else:
        event.pop("queryStringParameters", None)
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["routeKey"] = "$default"
    for header in headers:
        name, _, value = header.partition("=")
        event["headers"][name.lower()] = value
    if body:
        event["body"] = body
        event["headers"].setdefault("content-type", "application/json")
    return json.dumps(event).encode()


def lambda_env(emulator, extra):
    """What Lambda gives a provided.al2023 function: its runtime variables, the AWS_*
    credentials and region (here: moto's, from scripts/with-moto.sh), PATH, LANG and TZ —
    nothing else of this shell (no SSL_CERT_DIR, say) — plus the function's own (--env)."""
    env = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    env.update(
        {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": "/var/task",
            "_HANDLER": "bootstrap",
            "AWS_LAMBDA_RUNTIME_API": emulator.address,
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        }
    )
    env.update(dict(pair.split("=", 1) for pair in extra))
    return env


def status_of(kind, body):
    if kind != "response":
        return kind
    try:
        return json.loads(body).get("statusCode", "?")
    except ValueError:
        return "?"


def stop(process):
    process.kill()
    process.wait()


def coldstart(args):
    event = event_for(args.request[0], args.header)
    times, statuses = [], []
    for _ in range(args.runs):
        emulator = Emulator()
        try:
            request_id = emulator.invoke(event)
            started = time.perf_counter()
            process = subprocess.Popen([args.binary], env=lambda_env(emulator, args.env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                kind, body, arrived = emulator.wait(request_id, process)
            finally:
                stop(process)
        finally:
            emulator.close()
        times.append((arrived - started) * 1000)
        statuses.append(status_of(kind, body))
    times.sort()
    return {
        "binary": args.binary,
        "runs": args.runs,
        "min_ms": round(times[0], 2),
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
        "statuses": sorted(set(map(str, statuses))),
    }


def peak_memory_kb(pid):
    fields = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmHWM"].split()[0]), int(fields["VmRSS"].split()[0])


def serve(args):
    events = [event_for(request, args.header) for request in args.request]
    emulator = Emulator()
    process = subprocess.Popen([args.binary], env=lambda_env(emulator, args.env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    statuses = {}
    try:
        started = time.perf_counter()
        for i in range(args.requests):
            request_id = emulator.invoke(events[i % len(events)])
            kind, body, _ = emulator.wait(request_id, process)
            status = str(status_of(kind, body))
            statuses[status] = statuses.get(status, 0) + 1
        elapsed = time.perf_counter() - started
        peak_kb, rss_kb = peak_memory_kb(process.pid)
    finally:
        stop(process)
        emulator.close()
    return {
        "binary": args.binary,
        "requests": args.requests,
        "seconds": round(elapsed, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "final_rss_mb": round(rss_kb / 1024, 1),
        "statuses": statuses,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["coldstart", "serve"])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--request", action="append", required=True, help="'METHOD /path?query [BODY]'")
    parser.add_argument("--header", action="append", default=[], help="name=value, on every request")
    parser.add_argument("--env", action="append", default=[], help="K=V for the function")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    result = coldstart(args) if args.mode == "coldstart" else serve(args)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
