"""The baseline of the MCP benchmark: `contacts_list` served the way most MCP servers are
written today, with the official Python SDK (MCPServer, stateless streamable HTTP, JSON
responses) over a SQLite table, under uvicorn.

  python_server.py --port PORT --db PATH --contacts FILE

FILE is a Space API contacts page (`GET /contacts` JSON); its contacts are loaded into
SQLite, so both servers answer the same records. Serves `POST /mcp` and prints
`listening on http://127.0.0.1:PORT/mcp` once the app is built. No auth, no rate limit,
no scopes: the comparison is generous to it.
"""

import argparse
import json
import sqlite3

import uvicorn
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--db", required=True)
parser.add_argument("--contacts", required=True)
options = parser.parse_args()

COLUMNS = ("id", "name", "email", "tags", "created_at", "updated_at", "version")
connection = sqlite3.connect(options.db, check_same_thread=False)
connection.row_factory = sqlite3.Row
connection.execute(
    "CREATE TABLE IF NOT EXISTS contacts (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, tags TEXT NOT NULL, "
    "created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL)"
)
with open(options.contacts) as page:
    contacts = json.load(page)["data"]
connection.executemany(
    "INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?)",
    [tuple(json.dumps(c["tags"]) if name == "tags" else c.get(name) for name in COLUMNS) for c in contacts],
)
connection.commit()

server = MCPServer("contacts-baseline")


class Contact(BaseModel):
    id: str
    name: str
    email: str | None
    tags: list[str]
    created_at: str
    updated_at: str
    version: int


class ContactPage(BaseModel):
    data: list[Contact]
    next_cursor: str | None


# A typed result, as the SDK recommends: it answers with `structuredContent` and its text
# copy, and publishes an output schema, like the Space API's tool.
@server.tool()
def contacts_list(limit: int = 50) -> ContactPage:
    """List the contacts, newest first."""
    rows = connection.execute(
        "SELECT * FROM contacts ORDER BY created_at DESC LIMIT ?", (max(1, min(limit, 200)),)
    ).fetchall()
    data = [Contact(**{**dict(row), "tags": json.loads(row["tags"])}) for row in rows]
    return ContactPage(data=data, next_cursor=None)


app = server.streamable_http_app(json_response=True, stateless_http=True)
print(f"listening on http://127.0.0.1:{options.port}/mcp", flush=True)
uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning", access_log=False)
