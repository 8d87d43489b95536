-- A long-running script whose scoring rule can be edited while it runs.
--   bioxen examples/hot_reload/main.lua [ROUNDS]
-- then edit examples/hot_reload/scoring.lua and save: the next round uses the
-- new rule, and the count of scored sequences carries over (scoring.__reload).
-- Save a broken version: the error is printed and the old rule keeps working.
local scoring = bioxen.watch("scoring")
local rounds = tonumber(arg[1]) or math.huge

local reads = { "ATGCGC", "ATATAT", "GGGCCC", "ATGNNC" }

local round = 0
while round < rounds do
  round = round + 1
  local parts = {}
  for _, seq in ipairs(reads) do
    parts[#parts + 1] = ("%s=%.2f"):format(seq, scoring.score(seq))
  end
  print(("round %d [%s] %s (scored %d)"):format(round, scoring.name, table.concat(parts, " "), scoring.scored))
  io.stdout:flush()
  bioxen.task.sleep(1) -- reloads happen while the script waits
end
