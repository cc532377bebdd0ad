-- wrk script: SCIM PATCH /Groups/{id} adding, then removing, one member per request (the
-- shape Entra ID and Okta send for a membership change), and report the rate and latency.
-- A response other than 200 or 204 is a failure.
-- args: <token> <group id> <file of user ids, one per line> <threads>
-- Thread k (1-based) works on its own share of the users (lines k, k+threads, …), so two
-- connections never race on one membership; each user is added, then removed, in turn.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")
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
function response(status, headers, body) if status ~= 200 and status ~= 204 then failed() end end
