-- wrk script: GET recommendations for a random reader of the demo store.
-- Each thread draws its own ids (see seeded.lua, beside this script).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "seeded.lua")
local readers = tonumber(os.getenv("READERS") or "100000")

request = function()
  local path = string.format("/api/v1/recommendations?reader=reader-%d", math.random(0, readers - 1))
  return wrk.format("GET", path)
end
