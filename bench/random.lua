-- wrk script: GET PATTERN with {id} replaced by a random article id (1 to
-- ARTICLES) and {reader} by a random reader number (0 to READERS - 1).
-- Each thread draws its own ids (see seeded.lua, beside this script).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "seeded.lua")
local pattern = os.getenv("PATTERN") or "/api/v1/articles/{id}"
local articles = tonumber(os.getenv("ARTICLES") or "10000")
local readers = tonumber(os.getenv("READERS") or "100000")

request = function()
  local path = pattern:gsub("{id}", tostring(math.random(1, articles)))
  path = path:gsub("{reader}", tostring(math.random(0, readers - 1)))
  return wrk.format("GET", path)
end
