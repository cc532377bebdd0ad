-- wrk script: POST a new, unique user per request and report the rate.
-- args: <tag> <token> <kind: admin|scim>
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")
local counter = 0
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
function response(status, headers, body) if status ~= 201 then failed() end end
