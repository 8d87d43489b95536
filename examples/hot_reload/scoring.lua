-- The module to edit while examples/hot_reload/main.lua runs.
local M = { name = "gc", scored = 0 }

--- Fraction of G and C in a sequence.
function M.score(seq)
  M.scored = M.scored + 1
  local gc = select(2, seq:gsub("[GC]", ""))
  return gc / #seq
end

--- Called on the new version when this file is reloaded: carries state over.
function M.__reload(old)
  M.scored = old.scored
end

return M
