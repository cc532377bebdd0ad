-- wrk script: GET the URL's path with a bearer token and report the rate and latency. A
-- response that is not 200 is a failure.
-- args: <token>
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  wrk.method = "GET"
  wrk.headers["Authorization"] = "Bearer " .. (args[1] or "")
  wrk.headers["Accept"] = "application/json"
end
function response(status, headers, body)
  if status ~= 200 then bad = (bad or 0) + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + (t:get("bad") or 0) end
  io.write(string.format("RESULT rate=%.0f requests=%d failures=%d p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests / (summary.duration / 1e6), summary.requests, b, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
