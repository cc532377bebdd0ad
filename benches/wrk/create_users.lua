-- wrk script: POST a new, unique user per request and report the rate.
-- args: <tag> <token> <kind: admin|scim>
local counter = 0
local nthreads = 0
local threads = {}
function setup(thread) nthreads = nthreads + 1; thread:set("tid", nthreads); table.insert(threads, thread) end
function init(args)
  tag = args[1] or tostring(os.time())
  kind = args[3] or "admin"
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. (args[2] or "")
  if kind == "scim" then
    wrk.headers["Content-Type"] = "application/scim+json"
  else
    wrk.headers["Content-Type"] = "application/json"
  end
end
function request()
  counter = counter + 1
  local u = string.format("w%s-%d-%d@example.test", tag, tid, counter)
  local body
  if kind == "scim" then
    body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' .. u ..
      '","name":{"givenName":"W","familyName":"' .. counter .. '"},"active":true,"emails":[{"value":"' .. u ..
      '","type":"work","primary":true}],"externalId":"x' .. tag .. tid .. '-' .. counter .. '"}'
  else
    body = '{"email":"' .. u .. '","first_name":"W","last_name":"' .. counter .. '","department":"Bench"}'
  end
  return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body) if status ~= 201 then bad = (bad or 0) + 1 end end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + (t:get("bad") or 0) end
  io.write(string.format("RESULT rate=%.0f requests=%d non201=%d p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests / (summary.duration / 1e6), summary.requests, b, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
