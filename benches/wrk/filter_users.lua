-- wrk script: GET /scim/v2/Users?filter=userName eq "<a random seeded user>" and report
-- the rate and latency. A response that is not 200 with exactly one result is a failure.
-- args: <token> <number of seeded users> <userName prefix>
local nthreads = 0
local threads = {}
function setup(thread) nthreads = nthreads + 1; thread:set("tid", nthreads); table.insert(threads, thread) end
function init(args)
  wrk.method = "GET"
  wrk.headers["Authorization"] = "Bearer " .. (args[1] or "")
  wrk.headers["Accept"] = "application/scim+json"
  users = tonumber(args[2] or "1000")
  prefix = args[3] or "seed"
  math.randomseed(os.time() + tid * 7919)
end
function request()
  local i = math.random(0, users - 1)
  local path = string.format("/scim/v2/Users?filter=userName%%20eq%%20%%22%s-%d%%40bench.test%%22", prefix, i)
  return wrk.format(nil, path)
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"totalResults":1', 1, true) then bad = (bad or 0) + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + (t:get("bad") or 0) end
  io.write(string.format("RESULT rate=%.0f requests=%d failures=%d p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests / (summary.duration / 1e6), summary.requests, b, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
