-- wrk script: GET the URL's path with a bearer token and report the rate and latency. A
-- response that is not 200 is a failure.
-- args: <token>
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")
function init(args)
  wrk.method = "GET"
  wrk.headers["Authorization"] = "Bearer " .. (args[1] or "")
  wrk.headers["Accept"] = "application/json"
end
function response(status, headers, body)
  if status ~= 200 then failed() end
end
