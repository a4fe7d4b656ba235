-- wrk script for the MCP benchmark: the exact `tools/call contacts_list` request the official
-- Python SDK client sends in the stateless 2026-07-28 protocol (captured from it), replayed.
-- The Authorization header, when the server wants one, comes from wrk's -H.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "contacts_list"
wrk.body = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"contacts_list","arguments":{"limit":20},'
    .. '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    .. '"io.modelcontextprotocol/clientInfo":{"name":"mcp","version":"0.1.0"},'
    .. '"io.modelcontextprotocol/clientCapabilities":{}}}}'

-- A JSON-RPC error or a tool error still answers 200: each thread counts them, so the
-- report can refuse a run that measured failures.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    failures = 0
end

function response(status, headers, body)
    if status ~= 200 or body:find('"isError":true', 1, true) or body:find('"error":{', 1, true) then
        failures = failures + 1
    end
end

function done(summary, latency, requests)
    local total = 0
    for _, thread in ipairs(threads) do
        total = total + thread:get("failures")
    end
    io.write(string.format("MCP failures: %d\n", total))
end
