#!/usr/bin/env python3
"""The soak load for scripts/soak.sh: many concurrent clients, each with its own key,
running a mix of reads and writes on contacts and tasks against one `spacectl serve`
for a fixed time. Every request is bounded (timeout) and the run stops by itself.

  soak_client.py --base http://127.0.0.1:PORT --keys FILE --seconds 60 --pid PID --out FILE.json

Mix per request (weights): list, search and get contacts and tasks, create, patch (with
If-Match from the last read) and delete them; each client keeps at most 40 items of each
kind alive, deleting the oldest beyond that, so the data stays bounded and memory can be
judged. Writes the figures as JSON: requests, throughput, status classes, latency
percentiles, the server's VmRSS at the start, halfway and at the end.
"""

import argparse
import asyncio
import json
import random
import time

import aiohttp

API = "/functions/v1/space-api"
KEEP = 40


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Stats:
    def __init__(self):
        self.latencies = []
        self.statuses = {}
        self.errors = 0
        self.unexpected = []

    def record(self, label, status, seconds):
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 400 and len(self.unexpected) < 20:
            self.unexpected.append(f"{label} -> {status}")


class Client:
    def __init__(self, number, session, base, key, stats):
        self.n = number
        self.session = session
        self.base = base
        self.headers = {"Authorization": f"Bearer {key}"}
        self.stats = stats
        self.rng = random.Random(number)
        self.contacts = []  # [id, version]
        self.tasks = []
        self.created = 0

    async def call(self, method, path, body=None, if_match=None):
        headers = dict(self.headers)
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        started = time.perf_counter()
        try:
            async with self.session.request(method, self.base + API + path, json=body, headers=headers) as response:
                data = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            self.stats.errors += 1
            if len(self.stats.unexpected) < 20:
                self.stats.unexpected.append(f"{method} {path} -> {type(error).__name__}")
            return None, None
        self.stats.record(f"{method} {path.split('?')[0]}", status, time.perf_counter() - started)
        return status, (json.loads(data) if data and status < 300 else None)

    def next_name(self):
        self.created += 1
        return f"soak-{self.n}-{self.created}"

    async def create_contact(self):
        name = self.next_name()
        status, body = await self.call(
            "POST", "/contacts", {"name": name, "email": f"{name}@example.com", "tags": ["soak"]}
        )
        if status == 201:
            self.contacts.append([body["id"], body["version"]])

    async def create_task(self):
        status, body = await self.call(
            "POST",
            "/tasks",
            {"title": self.next_name(), "priority": self.rng.choice(["low", "normal", "high", "urgent"]), "due_at": "2026-01-01T09:00:00Z"},
        )
        if status == 201:
            self.tasks.append([body["id"], body["version"]])

    async def get(self, pool, collection):
        if not pool:
            return
        entry = self.rng.choice(pool)
        status, body = await self.call("GET", f"/{collection}/{entry[0]}")
        if status == 200:
            entry[1] = body["version"]

    async def patch(self, pool, collection, body):
        if not pool:
            return
        entry = self.rng.choice(pool)
        status, reply = await self.call("PATCH", f"/{collection}/{entry[0]}", body, if_match=entry[1])
        if status == 200:
            entry[1] = reply["version"]

    async def delete_oldest(self, pool, collection):
        if pool:
            entry = pool.pop(0)
            await self.call("DELETE", f"/{collection}/{entry[0]}")

    async def step(self):
        choice = self.rng.random()
        if choice < 0.14:
            await self.call("GET", "/contacts?limit=20")
        elif choice < 0.20:
            await self.call("GET", f"/contacts?q=soak-{self.n}&limit=10")
        elif choice < 0.32:
            await self.get(self.contacts, "contacts")
        elif choice < 0.42:
            await self.create_contact()
        elif choice < 0.50:
            await self.patch(self.contacts, "contacts", {"company": f"Co {self.rng.randrange(1000)}"})
        elif choice < 0.60:
            await self.call("GET", "/tasks?status=open&limit=20")
        elif choice < 0.64:
            await self.call("GET", "/tasks?overdue=true&limit=20")
        elif choice < 0.72:
            await self.get(self.tasks, "tasks")
        elif choice < 0.80:
            await self.create_task()
        elif choice < 0.90:
            await self.patch(self.tasks, "tasks", {"status": self.rng.choice(["open", "in_progress", "done"])})
        elif choice < 0.95:
            await self.delete_oldest(self.contacts, "contacts")
        else:
            await self.delete_oldest(self.tasks, "tasks")
        while len(self.contacts) > KEEP:
            await self.delete_oldest(self.contacts, "contacts")
        while len(self.tasks) > KEEP:
            await self.delete_oldest(self.tasks, "tasks")

    async def run(self, deadline):
        while time.monotonic() < deadline:
            await self.step()


def percentile(sorted_values, fraction):
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--keys", required=True, help="a file with one space key per line: one client each")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    keys = [line.strip() for line in open(args.keys) if line.strip()]

    stats = Stats()
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=len(keys))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        clients = [Client(n, session, args.base, key, stats) for n, key in enumerate(keys)]
        # Warm-up: every client creates a few items, so reads have something to read.
        for client in clients:
            for _ in range(3):
                await client.create_contact()
                await client.create_task()
        stats.__init__()
        rss_start = rss_kib(args.pid)
        started = time.monotonic()
        deadline = started + args.seconds

        async def halfway():
            await asyncio.sleep(args.seconds / 2)
            return rss_kib(args.pid)

        half = asyncio.create_task(halfway())
        await asyncio.gather(*(client.run(deadline) for client in clients))
        elapsed = time.monotonic() - started
        rss_half = await half
        rss_end = rss_kib(args.pid)

    latencies = sorted(stats.latencies)
    requests = len(latencies)
    classes = {}
    for status, count in stats.statuses.items():
        label = f"{status // 100}xx"
        classes[label] = classes.get(label, 0) + count
    result = {
        "clients": len(keys),
        "seconds": round(elapsed, 1),
        "requests": requests,
        "throughput": round(requests / elapsed, 1) if elapsed else 0,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "classes": classes,
        "server_errors": classes.get("5xx", 0),
        "client_errors": classes.get("4xx", 0),
        "connection_errors": stats.errors,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round((latencies[-1] if latencies else 0) * 1000, 2),
        "rss_start_kib": rss_start,
        "rss_half_kib": rss_half,
        "rss_end_kib": rss_end,
        "unexpected": stats.unexpected,
    }
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "unexpected"}))


if __name__ == "__main__":
    asyncio.run(main())
