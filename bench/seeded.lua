-- Gives each of wrk's threads its own random sequence; loaded by the
-- scripts that draw random ids and readers. wrk runs every thread in a Lua
-- state of its own, and each state's math.random starts from the same
-- seed: without this, both threads asked for the same ids in the same
-- order, and every other request found its answer in a cache.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  math.randomseed(thread_number)
end
