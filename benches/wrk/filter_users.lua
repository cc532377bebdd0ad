-- wrk script: GET /scim/v2/Users?filter=userName eq "<a random seeded user>" and report
-- the rate and latency. A response that is not 200 with exactly one result is a failure.
-- args: <token> <number of seeded users> <userName prefix>
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")
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
  if status ~= 200 or not string.find(body, '"totalResults":1', 1, true) then failed() end
end
