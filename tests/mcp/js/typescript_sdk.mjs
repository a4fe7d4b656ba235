// The MCP server, driven by the official TypeScript SDK (StreamableHTTPClientTransport).
// Run by scripts/test-mcp.sh: BASE_URL and SPACE_KEY come from the environment.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = new URL(`${process.env.BASE_URL}/functions/v1/space-mcp`);
let checks = 0;
function check(condition, message) {
  checks += 1;
  if (!condition) {
    console.error(`FAIL: ${message}`);
    process.exit(1);
  }
}

const transport = new StreamableHTTPClientTransport(url, {
  requestInit: { headers: { Authorization: `Bearer ${process.env.SPACE_KEY}` } },
});
const client = new Client({ name: "space-api-tests", version: "1.0.0" });
await client.connect(transport);

const { tools } = await client.listTools();
const names = tools.map((tool) => tool.name);
check(names.includes("write_contacts") && names.includes("read_tasks"), `one tool per scope: ${names.length}`);
check(names.length <= 128, "a list every client accepts");
check(tools.every((tool) => tool.inputSchema.type === "object"), "every input schema is an object");

const viaScope = await client.callTool({
  name: "write_tasks",
  arguments: { operation: "tasks_create", arguments: { title: "Through the scope tool" } },
});
check(!viaScope.isError && viaScope.structuredContent.title === "Through the scope tool", "scope tools run operations");

const created = await client.callTool({ name: "tasks_create", arguments: { title: "From TypeScript", priority: "high" } });
check(!created.isError, `create succeeds: ${JSON.stringify(created)}`);
check(created.structuredContent.priority === "high", "structured content is the REST body");
const text = JSON.parse(created.content[0].text);
check(text.id === created.structuredContent.id, "and a text copy");

const fetched = await client.callTool({ name: "tasks_get", arguments: { id: created.structuredContent.id } });
check(fetched.structuredContent.title === "From TypeScript", "get returns it");

const invalid = await client.callTool({ name: "tasks_create", arguments: { title: "x", status: "someday" } });
check(invalid.isError && JSON.parse(invalid.content[0].text).error.fields.status, "validation errors carry field messages");

let unknownRefused = false;
try {
  await client.callTool({ name: "wallet_transfer", arguments: {} });
} catch (error) {
  unknownRefused = true;
}
check(unknownRefused, "an unknown tool is an error");

await client.close();
console.log(`typescript sdk: ${checks} checks passed`);
