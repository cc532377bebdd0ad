-- wrk script: SCIM PATCH /Groups/{id} adding, then removing, one member per request (the
-- shape Entra ID and Okta send for a membership change), and report the rate and latency.
-- A response other than 200 or 204 is a failure.
-- args: <token> <group id> <file of user ids, one per line> <threads>
-- Thread k (1-based) works on its own share of the users (lines k, k+threads, …), so two
-- connections never race on one membership; each user is added, then removed, in turn.
local nthreads = 0
local threads = {}
function setup(thread) nthreads = nthreads + 1; thread:set("tid", nthreads); table.insert(threads, thread) end
function init(args)
  wrk.method = "PATCH"
  wrk.headers["Authorization"] = "Bearer " .. (args[1] or "")
  wrk.headers["Content-Type"] = "application/scim+json"
  path = "/scim/v2/Groups/" .. (args[2] or "")
  local step = tonumber(args[4] or "1")
  ids = {}
  local i = 0
  for line in io.lines(args[3]) do
    if i % step == tid - 1 then table.insert(ids, line) end
    i = i + 1
  end
  sent = 0
end
function request()
  local k = math.floor(sent / 2) % #ids + 1
  local op = (sent % 2 == 0) and "add" or "remove"
  sent = sent + 1
  local body
  if op == "add" then
    body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"' .. ids[k] .. '"}]}]}'
  else
    body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \\"' .. ids[k] .. '\\"]"}]}'
  end
  return wrk.format(nil, path, nil, body)
end
function response(status, headers, body) if status ~= 200 and status ~= 204 then bad = (bad or 0) + 1 end end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + (t:get("bad") or 0) end
  io.write(string.format("RESULT rate=%.0f requests=%d failures=%d p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests / (summary.duration / 1e6), summary.requests, b, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
