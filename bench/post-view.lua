-- wrk script: POST a view of a random article by a random reader.
-- Each thread draws its own ids (see seeded.lua, beside this script).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "seeded.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local articles = tonumber(os.getenv("ARTICLES") or "10000")
local readers = tonumber(os.getenv("READERS") or "100000")

request = function()
  local path = "/api/v1/articles/" .. math.random(1, articles) .. "/views"
  local body = string.format('{"reader":"reader-%d"}', math.random(0, readers - 1))
  return wrk.format(nil, path, nil, body)
end
