-- Shared by the wrk scripts of this folder (each loads it first): numbers the threads
-- (`tid`, 1-based, in each thread's own state), counts what a script's `response` calls a
-- failure, and prints the RESULT line the load bench reads.
local threads = {}
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end
function failed() bad = (bad or 0) + 1 end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + (t:get("bad") or 0) end
  io.write(string.format("RESULT rate=%.0f requests=%d failures=%d p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests / (summary.duration / 1e6), summary.requests, b, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
