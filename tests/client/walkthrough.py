"""README.md's walkthrough ("Try it"), driven by a Python client generated from the
OpenAPI document the server serves (scripts/test-client.sh generates it and runs this).

Every call goes through the generated, typed functions and models; the one exception is
the request the README sends with invalid values on purpose, which typed models refuse
to build: it goes through the client's own HTTP session and is read back with the
generated `Error` model.

Arguments: BASE_URL SPACE_KEY ACCOUNT_KEY SPACE_ID
"""

import datetime
import sys

from space_api_client import AuthenticatedClient, Client
from space_api_client.api.account import keys_create
from space_api_client.api.calendar import calendar_feed_rotate
from space_api_client.api.contacts import contacts_create, contacts_get, contacts_list
from space_api_client.api.tasks import tasks_create, tasks_list, tasks_update
from space_api_client.models import (
    Contact,
    ContactCreate,
    ContactList,
    Error,
    KeyCreate,
    KeyCreated,
    Scope,
    Task,
    TaskCreate,
    TaskList,
    TaskPriority,
    TaskStatus,
    TaskUpdate,
)
from space_api_client.types import Response

base, space_key, account_key, space_id = sys.argv[1:]
space = AuthenticatedClient(base_url=base, token=space_key, raise_on_unexpected_status=True)
account = AuthenticatedClient(base_url=base, token=account_key, raise_on_unexpected_status=True)
checked = []


def check(what, condition, detail=""):
    if not condition:
        sys.exit(f"client walkthrough: {what} failed {detail}")
    checked.append(what)


def expect(response: Response, status: int, model: type):
    check(
        f"{status} {model.__name__}",
        response.status_code == status and isinstance(response.parsed, model),
        f"(got {response.status_code}: {response.content[:300]!r})",
    )
    return response.parsed


# Create a contact, then list contacts.
ada = expect(
    contacts_create.sync_detailed(client=space, body=ContactCreate(name="Ada Lovelace", email="ada@example.com")),
    201,
    Contact,
)
check("the contact's email", ada.email == "ada@example.com" and ada.tags == [] and ada.version == 1)
check("a contact id", ada.id.startswith("con_"))
found = expect(contacts_list.sync_detailed(client=space, q="ada", limit=10), 200, ContactList)
check("the search finds Ada", [c.id for c in found.data] == [ada.id] and found.next_cursor is None)
# An empty cursor is no cursor.
again = expect(contacts_list.sync_detailed(client=space, q="ada", cursor=""), 200, ContactList)
check("an empty cursor", [c.id for c in again.data] == [ada.id])

# No key: 401 in the error envelope.
unauthenticated = contacts_list.sync_detailed(client=Client(base_url=base))
check("401 without a key", unauthenticated.status_code == 401, f"(got {unauthenticated.status_code})")
check("UNAUTHENTICATED", isinstance(unauthenticated.parsed, Error) and unauthenticated.parsed.error.code == "UNAUTHENTICATED")

# A key without the scope: 403 naming it. Mint a read-only key with the account key.
reader = expect(
    keys_create.sync_detailed(
        space_id, client=account, body=KeyCreate(name="reader", scopes=[Scope("contacts:read")])
    ),
    201,
    KeyCreated,
)
reading = AuthenticatedClient(base_url=base, token=reader.token)
refused = contacts_create.sync_detailed(client=reading, body=ContactCreate(name="Grace"))
check("403 without the scope", refused.status_code == 403 and isinstance(refused.parsed, Error))
check("the scope is named", refused.parsed.error.code == "FORBIDDEN" and "contacts:write" in refused.parsed.error.message)

# Bad input: 422 with a message per field. (Typed models cannot hold these values.)
bad = space.get_httpx_client().post(
    "/functions/v1/space-api/tasks", json={"status": "someday", "due_at": "tomorrow"}
)
error = Error.from_dict(bad.json())
check("422 for bad input", bad.status_code == 422 and error.error.code == "VALIDATION_FAILED")
fields = error.error.fields.additional_properties if error.error.fields else {}
check("every bad field named", {"due_at", "status", "title"} <= set(fields), f"({sorted(fields)})")

# "List my open tasks and mark the overdue ones high priority": one list, one PATCH per task.
yesterday = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
late = expect(tasks_create.sync_detailed(client=space, body=TaskCreate(title="Send the invoice", due_at=yesterday)), 201, Task)
expect(tasks_create.sync_detailed(client=space, body=TaskCreate(title="Someday")), 201, Task)
overdue = expect(tasks_list.sync_detailed(client=space, status=TaskStatus.OPEN, overdue=True), 200, TaskList)
check("the overdue task alone", [t.id for t in overdue.data] == [late.id])
for task in overdue.data:
    # With If-Match: only if nobody changed the task since it was read.
    changed = tasks_update.sync_detailed(
        task.id, client=space, body=TaskUpdate(priority=TaskPriority.HIGH), if_match=f'"{task.version}"'
    )
    updated = expect(changed, 200, Task)
    check("the priority", updated.priority == TaskPriority.HIGH and updated.version == task.version + 1)
    check("the ETag", changed.headers.get("etag") == f'"{updated.version}"')
    stale = tasks_update.sync_detailed(
        task.id, client=space, body=TaskUpdate(priority=TaskPriority.URGENT), if_match=f'"{task.version}"'
    )
    check("412 for a stale If-Match", stale.status_code == 412 and stale.parsed.error.code == "PRECONDITION_FAILED")
high = expect(tasks_list.sync_detailed(client=space, priority=TaskPriority.HIGH), 200, TaskList)
check("the task is high priority", [t.id for t in high.data] == [late.id])

# Links the API hands out are absolute, on the server's public URL.
feed = calendar_feed_rotate.sync_detailed(client=space)
check("the feed URL", feed.status_code == 200 and feed.parsed.url.startswith(f"{base}/c/"), f"({feed.parsed})")
check("the webcal URL", feed.parsed.webcal_url == "webcal://" + feed.parsed.url.split("://", 1)[1])

# The contact is still there, read through its own operation.
expect(contacts_get.sync_detailed(ada.id, client=space), 200, Contact)
print(f"client walkthrough: {len(checked)} checks passed")
