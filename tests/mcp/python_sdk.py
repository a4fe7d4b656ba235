"""The MCP server, driven by the official Python SDK in both protocol eras.

Run by scripts/test-mcp.sh against `spacectl serve`: BASE_URL, ACCOUNT_KEY and SPACE_ID
come from the environment. Exits non-zero on the first failed expectation.
"""

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

BASE = os.environ["BASE_URL"]
ACCOUNT_KEY = os.environ["ACCOUNT_KEY"]
SPACE_ID = os.environ["SPACE_ID"]
MCP = f"{BASE}/functions/v1/space-mcp"
CHECKS = 0


def check(condition, message):
    global CHECKS
    CHECKS += 1
    if not condition:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)


def http(method, path, key, body=None, headers=None):
    request = urllib.request.Request(
        f"{BASE}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def mint(scopes, **extra):
    status, body = http(
        "POST",
        f"/functions/v1/account-api/spaces/{SPACE_ID}/keys",
        ACCOUNT_KEY,
        {"name": "mcp test", "scopes": scopes, "rate_limit_per_minute": 100000, **extra},
    )
    check(status == 201, f"minting a key: {status} {body}")
    return body["token"]


def envelope(result):
    """The REST error envelope an error result carries as text."""
    return json.loads(result.content[0].text)["error"]


def client(key, mode="auto", query=""):
    transport = streamable_http_client(
        f"{MCP}{query}", http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    )
    return Client(transport, mode=mode, cache=None)


async def tool_names(key, mode="auto", query=""):
    async with client(key, mode, query) as session:
        return [tool.name for tool in (await session.list_tools()).tools]


async def scenario(mode):
    everything = mint(["contacts:read", "contacts:write", "tasks:read", "tasks:write", "secrets:read"])
    reader = mint(["contacts:read"])

    async with client(everything, mode) as session:
        check(session.protocol_version in ("2026-07-28", "2025-11-25"), f"{mode}: negotiated {session.protocol_version}")
        if mode == "legacy":
            check(session.protocol_version == "2025-11-25", "legacy mode uses the initialize handshake")
        tools = (await session.list_tools()).tools
        names = [tool.name for tool in tools]
        check(
            names == ["read_contacts", "write_contacts", "read_tasks", "write_tasks", "read_secrets", "search_operations"],
            f"{mode}: one tool per scope by default: {names}",
        )
        by_name = {tool.name: tool for tool in tools}
        check(by_name["read_contacts"].annotations.read_only_hint is True, "read tools are read-only")
        check(by_name["write_contacts"].annotations.destructive_hint is True, "a tool that can delete says so")
        operations = by_name["write_contacts"].input_schema["properties"]["operation"]["enum"]
        check("contacts_create" in operations and "contacts_import" in operations, f"{mode}: {operations}")
        via_scope = await session.call_tool(
            "write_contacts", {"operation": "contacts_create", "arguments": {"name": f"Scope tool {mode}"}}
        )
        check(not via_scope.is_error and via_scope.structured_content["name"] == f"Scope tool {mode}", f"{via_scope}")

    async with client(everything, mode, "?mode=operations") as session:
        tools = (await session.list_tools()).tools
        names = [tool.name for tool in tools]
        for expected in ["contacts_list", "contacts_create", "contacts_import", "tasks_update", "secrets_list"]:
            check(expected in names, f"{mode}: {expected} is listed")
        check(not any(name.startswith("account") or name.startswith("spaces") for name in names), "no account tools")
        by_name = {tool.name: tool for tool in tools}
        check(by_name["contacts_list"].annotations.read_only_hint is True, "reads are read-only")
        check(by_name["contacts_delete"].annotations.destructive_hint is True, "deletes are destructive")
        check(by_name["contacts_create"].output_schema is not None, "tools carry an output schema")

        # One email per mode: the Space refuses a second contact with the same email.
        created = await session.call_tool("contacts_create", {"name": "Ada via MCP", "email": f"ADA.{mode}@example.com"})
        check(not created.is_error, f"{mode}: create succeeds: {created}")
        contact = created.structured_content
        check(contact["email"] == f"ada.{mode}@example.com", "the same validation and normalization as REST")
        status, fetched = http("GET", f"/functions/v1/space-api/contacts/{contact['id']}", everything)
        check(status == 200 and fetched == contact, "REST sees exactly what MCP created")

        bad = await session.call_tool("contacts_create", {"email": "not-an-email"})
        check(bad.is_error, "validation failures are tool errors")
        check("email" in envelope(bad)["fields"], f"with the REST field errors: {bad.content}")

        first = await session.call_tool("tasks_create", {"title": f"Once {mode}", "idempotency_key": f"mcp-{mode}"})
        again = await session.call_tool("tasks_create", {"title": f"Once {mode}", "idempotency_key": f"mcp-{mode}"})
        check(first.structured_content["id"] == again.structured_content["id"], "idempotency_key replays")
        status, replayed = http(
            "POST", "/functions/v1/space-api/tasks", everything, {"title": f"Once {mode}"}, {"Idempotency-Key": f"mcp-{mode}"}
        )
        check(status == 201 and replayed["id"] == first.structured_content["id"], "and shares the REST Idempotency-Key store")

        stale = await session.call_tool("contacts_update", {"id": contact["id"], "name": "Stale", "if_match": 7})
        check(stale.is_error and envelope(stale)["code"] == "PRECONDITION_FAILED", "if_match is honoured")

    check(await tool_names(reader, mode) == ["read_contacts", "search_operations"], f"{mode}: a reader's list")
    async with client(reader, mode, "?mode=operations") as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        check(
            names == ["contacts_list", "contacts_get", "contacts_tags_list", "contacts_notes_list", "contacts_notes_get"],
            f"{mode}: a contacts:read key lists exactly its tools: {names}",
        )
        before = http("GET", "/functions/v1/space-api/contacts?limit=200", everything)[1]["data"]
        refused = None
        try:
            result = await session.call_tool("contacts_create", {"name": "Should not exist"})
            refused = result.is_error
        except MCPError as error:
            refused = "not available" in str(error)
        check(refused, "a tool outside the scopes is an error")
        after = http("GET", "/functions/v1/space-api/contacts?limit=200", everything)[1]["data"]
        check(before == after, "and changes nothing")
        listed = await session.call_tool("contacts_list", {"limit": 5})
        check(not listed.is_error and "data" in listed.structured_content, "the reader can list")

    check(await tool_names(everything, mode, "?toolsets=tasks&mode=operations") == [
        "tasks_list", "tasks_create", "tasks_get", "tasks_update", "tasks_replace", "tasks_delete"
    ], "?toolsets narrows the list")
    check(await tool_names(everything, mode, "?toolsets=tasks") == ["read_tasks", "write_tasks", "search_operations"],
          "and the default list")
    pinned = mint(["contacts:read", "contacts:write", "tasks:read"], toolsets=["tasks"], read_only=True)
    check(await tool_names(pinned, mode, "?mode=operations") == ["tasks_list", "tasks_get"],
          "a key's pinned toolsets and read-only mode")
    check(await tool_names(pinned, mode) == ["read_tasks", "search_operations"], "in every mode")
    status, _ = http("POST", "/functions/v1/space-api/contacts", pinned, {"name": "x"})
    check(status == 403, "the pins hold on REST too")

    async with client(everything, mode, "?mode=compact") as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        check(names == ["search_operations", "call_operation"], f"compact mode offers two tools: {names}")
        found = await session.call_tool("search_operations", {"query": "create task"})
        operations = [op["name"] for op in found.structured_content["operations"]]
        check("tasks_create" in operations, f"search finds operations: {operations}")
        made = await session.call_tool("call_operation", {"name": "tasks_create", "arguments": {"title": "Via compact"}})
        check(not made.is_error and made.structured_content["title"] == "Via compact", "call runs any allowed operation")


async def social():
    """The social family through its scope tools; `spacectl serve`'s worker publishes."""
    status, account = http(
        "POST",
        f"/functions/v1/account-api/spaces/{SPACE_ID}/connections",
        ACCOUNT_KEY,
        {"kind": "social", "network": "linkedin", "name": "Acme on LinkedIn", "handle": "acme"},
    )
    check(status == 201, f"the owner connects an account: {status} {account}")
    key = mint(["social:read", "social:write", "social:run"])
    async with client(key) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        check(names == ["read_social", "write_social", "run_social", "search_operations"], f"social tools: {names}")
        created = await session.call_tool(
            "write_social",
            {"operation": "social_posts_create", "arguments": {"content": "Hello from MCP", "account_ids": [account["id"]]}},
        )
        check(not created.is_error and created.structured_content["status"] == "draft", f"a draft cluster: {created}")
        cluster = created.structured_content["id"]
        published = await session.call_tool(
            "run_social", {"operation": "social_clusters_publish", "arguments": {"id": cluster}}
        )
        check(not published.is_error, f"publish now: {published}")
        post = published.structured_content["posts"][0]["id"]
        for _ in range(100):
            got = await session.call_tool("read_social", {"operation": "social_posts_get", "arguments": {"id": post}})
            if got.structured_content["status"] == "published":
                break
            await asyncio.sleep(0.1)
        check(got.structured_content["status"] == "published", f"the worker published it: {got.structured_content}")
        check(got.structured_content["network_url"].startswith("https://www.linkedin.com/"), "with the network's URL")


async def inbox():
    """A message comes in on an SMS channel; a key reads the thread and replies over MCP."""
    status, channel = http(
        "POST",
        f"/functions/v1/account-api/spaces/{SPACE_ID}/connections",
        ACCOUNT_KEY,
        {"kind": "messaging", "channel": "sms", "name": "Support line", "address": "+12015550100"},
    )
    check(status == 201, f"the owner connects a channel: {status} {channel}")
    status, received = http(
        "POST",
        f"/functions/v1/account-api/spaces/{SPACE_ID}/connections/{channel['id']}/inbound",
        ACCOUNT_KEY,
        {"from": "+12015550123", "text": "Is my order on its way?"},
    )
    check(status == 201, f"an inbound message: {status} {received}")
    thread = received["thread"]["id"]
    key = mint(["inbox:read", "inbox:run"])
    async with client(key) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        check(names == ["read_inbox", "run_inbox", "search_operations"], f"inbox tools: {names}")
        listed = await session.call_tool(
            "read_inbox", {"operation": "inbox_threads_list", "arguments": {"status": "open"}}
        )
        ids = [t["id"] for t in listed.structured_content["data"]]
        check(thread in ids, f"the thread is open in the inbox: {ids}")
        replied = await session.call_tool(
            "run_inbox",
            {"operation": "inbox_threads_reply", "arguments": {"id": thread, "text": "Yes, it ships today."}},
        )
        check(not replied.is_error and replied.structured_content["status"] == "queued", f"a queued reply: {replied}")
        check(replied.structured_content["segments"] == 1, "one SMS segment")
        refused = await session.call_tool(
            "run_inbox", {"operation": "inbox_threads_close", "arguments": {"id": thread}}
        )
        check(refused.is_error, "closing is inbox:write, which the key lacks")
        for _ in range(100):
            messages = await session.call_tool(
                "read_inbox", {"operation": "inbox_threads_messages", "arguments": {"id": thread}}
            )
            statuses = [m["status"] for m in messages.structured_content["data"] if m.get("direction") == "outbound"]
            if statuses and statuses[0] in ("sent", "delivered", "read"):
                break
            await asyncio.sleep(0.1)
        check(statuses and statuses[0] in ("sent", "delivered", "read"), f"the worker sent it: {statuses}")


async def mail():
    """A key with mail:write sends through its one tool; the worker delivers; a bounce is
    suppressed and the next send to that address is refused."""
    status, sender = http(
        "POST",
        f"/functions/v1/account-api/spaces/{SPACE_ID}/connections",
        ACCOUNT_KEY,
        {"kind": "mail", "address": "agent@example.com"},
    )
    check(status == 201 and sender["verified"] is True, f"the owner connects a sandbox sender: {status} {sender}")
    status, _ = http(
        "POST",
        f"/functions/v1/account-api/spaces/{SPACE_ID}/connections/{sender['id']}/sandbox",
        ACCOUNT_KEY,
        {"bounce_recipients": ["gone@example.com"]},
    )
    check(status == 200, f"the sandbox is told to bounce: {status}")
    key = mint(["mail:write"])
    async with client(key) as session:
        tools = (await session.list_tools()).tools
        names = [tool.name for tool in tools]
        check(names == ["write_mail", "search_operations"], f"mail tools: {names}")
        check(tools[0].annotations.open_world_hint is True, "sending mail reaches the world")

        def message(to):
            return {
                "operation": "mail_messages_send",
                "arguments": {
                    "from_sender_id": sender["id"],
                    "to": [to],
                    "subject": "Your order shipped",
                    "html": "<p>It left <b>today</b>.</p><script>steal()</script>",
                },
            }

        sent = await session.call_tool("write_mail", message("Ada@Example.com"))
        check(not sent.is_error and sent.structured_content["status"] == "queued", f"a queued mail: {sent}")
        check("script" not in sent.structured_content["html"], "the html is sanitized")
        bounced = await session.call_tool("write_mail", message("gone@example.com"))
        check(not bounced.is_error, f"a mail that will bounce: {bounced}")
        want = {sent.structured_content["id"]: "delivered", bounced.structured_content["id"]: "bounced"}
        for _ in range(300):
            got = {
                id: (await session.call_tool("write_mail", {"operation": "mail_messages_get", "arguments": {"id": id}}))
                .structured_content["status"]
                for id in want
            }
            if got == want:
                break
            await asyncio.sleep(0.1)
        check(got == want, f"the worker delivered one and the other bounced: {got}")
        refused = await session.call_tool("write_mail", message("gone@example.com"))
        check(refused.is_error and envelope(refused)["code"] == "RECIPIENT_SUPPRESSED", f"suppressed: {refused}")


async def automations():
    """The owner defines an automation; a key runs it through its run tool and reads the run
    move on the worker until its step created the task."""
    status, automation = http(
        "POST",
        f"/functions/v1/account-api/spaces/{SPACE_ID}/automations",
        ACCOUNT_KEY,
        {"name": "Follow up", "trigger": {"type": "manual"}, "steps": [{"type": "create_task", "title": "Call back"}]},
    )
    check(status == 201, f"the owner defines an automation: {status} {automation}")
    key = mint(["automations:read", "automations:run", "tasks:write"])
    async with client(key) as session:
        tools = (await session.list_tools()).tools
        names = {tool.name for tool in tools}
        check({"read_automations", "run_automations"} <= names, f"automation tools: {names}")
        run_tool = next(tool for tool in tools if tool.name == "run_automations")
        check(run_tool.annotations.open_world_hint is True, "running an automation reaches the world")
        started = await session.call_tool(
            "run_automations",
            {"operation": "automations_run", "arguments": {"id": automation["id"], "input": {"ticket": 7}}},
        )
        check(not started.is_error and started.structured_content["status"] == "queued", f"a queued run: {started}")
        run_id = started.structured_content["id"]
        status = None
        for _ in range(300):
            shown = await session.call_tool(
                "read_automations",
                {"operation": "automations_runs_get", "arguments": {"id": automation["id"], "run_id": run_id}},
            )
            status = shown.structured_content["status"]
            if status in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.1)
        check(status == "succeeded", f"the worker ran its step: {status}")


async def main():
    async with httpx2.AsyncClient() as raw:
        response = await raw.post(MCP, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        check(response.status_code == 401, "no key is HTTP 401")
        check(response.headers.get("www-authenticate", "").startswith("Bearer"), "with WWW-Authenticate")
    await scenario("auto")
    await scenario("legacy")
    await social()
    await inbox()
    await mail()
    await automations()
    print(f"python sdk: {CHECKS} checks passed")


asyncio.run(main())
