-- bioxen.task: the Lua half. `all` composes spawn and wait.
local native = ...
local task = {}
for k, v in pairs(native) do task[k] = v end

--- Waits for every task (functions are spawned first) and returns their first
--- values in order. Raises the first failure, after all have finished.
function task.all(list)
  local handles = {}
  for i, t in ipairs(list) do
    handles[i] = type(t) == "function" and native.spawn(t) or t
  end
  local results, failure = {}, nil
  for i, h in ipairs(handles) do
    local ok, value = pcall(native.wait, h)
    if ok then results[i] = value elseif failure == nil then failure = value end
  end
  if failure ~= nil then error(failure, 0) end
  return results
end

return task
