-- wrk script: a mixed load of every kind of request at once, counting the
-- answers by status. Reads: articles (35%), list pages (10%), rankings (5%),
-- searches (5%), related (5%). Writes: views (25%), reactions (10%), new
-- articles by an editor (5%, needs TOKEN).
local articles = tonumber(os.getenv("ARTICLES") or "10000")
local readers = tonumber(os.getenv("READERS") or "25000")
local token = os.getenv("TOKEN") or ""
local words = { "election", "storm", "rail", "museum", "strike", "housing", "drought" }
local threads = {}
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
  table.insert(threads, thread)
end

-- Each thread's Lua state starts math.random from the same seed: without
-- this, both threads made the same requests in the same order.
function init(args)
  math.randomseed(id)
end

counts = {}
local created = 0

request = function()
  local r = math.random(100)
  local article = math.random(1, articles)
  local reader = "reader-" .. math.random(0, readers - 1)
  if r <= 35 then
    return wrk.format("GET", "/api/v1/articles/" .. article)
  elseif r <= 45 then
    return wrk.format("GET", "/api/v1/articles?limit=20")
  elseif r <= 50 then
    return wrk.format("GET", "/api/v1/ranking?window=7d&metric=views")
  elseif r <= 55 then
    return wrk.format("GET", "/api/v1/articles?q=" .. words[math.random(#words)])
  elseif r <= 60 then
    return wrk.format("GET", "/api/v1/articles/" .. article .. "/related")
  elseif r <= 85 then
    return wrk.format("POST", "/api/v1/articles/" .. article .. "/views",
      { ["Content-Type"] = "application/json" }, '{"reader":"' .. reader .. '"}')
  elseif r <= 95 then
    return wrk.format("PUT", "/api/v1/articles/" .. article .. "/reactions/very_good",
      { ["Content-Type"] = "application/json" }, '{"reader":"' .. reader .. '"}')
  else
    created = created + 1
    local body = string.format(
      '{"slug":"load-%d-%d","title":"Load test %d %d","category":"news","status":"published",'
        .. '"tags":["Load test"],"body_markdown":"A paragraph about the %s."}',
      id, created, id, created, words[math.random(#words)])
    return wrk.format("POST", "/api/v1/articles",
      { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
  end
end

response = function(status, headers, body)
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local statuses = {}
  for status in pairs(total) do table.insert(statuses, status) end
  table.sort(statuses)
  for _, status in ipairs(statuses) do
    io.write(string.format("status %s: %d\n", status, total[status]))
  end
end
