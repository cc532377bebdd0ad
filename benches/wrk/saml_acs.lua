-- wrk script: POST pre-signed SAML responses to the ACS, each one once, and report the rate.
-- args: <bodies file: one form body (SAMLResponse=…) per line> <threads>
-- Thread k (1-based) takes lines k, k+threads, k+2*threads, … so no two requests post the
-- same assertion (a replay would be refused, 403, and counted as a failure). A thread that
-- runs out of bodies starts over: its replays are failures, so size the file to the run.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")
function init(args)
  local file = args[1]
  local step = tonumber(args[2] or "1")
  bodies = {}
  local i = 0
  for line in io.lines(file) do
    if i % step == tid - 1 then table.insert(bodies, line) end
    i = i + 1
  end
  next_body = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
function request()
  next_body = next_body + 1
  if next_body > #bodies then next_body = 1 end
  return wrk.format(nil, nil, nil, bodies[next_body])
end
-- 303 to the target is a login.
function response(status, headers, body) if status ~= 303 then failed() end end
