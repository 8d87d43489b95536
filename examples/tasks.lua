#!/usr/bin/env bioxen
-- Concurrency with bioxen.task: the main chunk is itself a task, so waiting
-- (sleep, VM jobs, network calls) lets the other tasks run.
-- Run: bioxen examples/tasks.lua
local task = bioxen.task

local function sample(id, seconds)
  task.sleep(seconds)
  return ("sample %d done after %.2fs"):format(id, seconds)
end

local started = os.clock()
local jobs = {}
for i = 1, 5 do
  jobs[i] = task.spawn(sample, i, 0.1 * i)
end
-- all{} waits for every task and returns their first values in order.
for _, line in ipairs(task.all(jobs)) do print(line) end

-- A failing task raises its error (with its kind) where it is waited for.
local failing = task.spawn(function() error(bioxen.error("Analysis", "bad input file")) end)
local ok, err = pcall(task.wait, failing)
print(ok, err.kind, err.message)

-- A task nobody needs any more can be cancelled.
local slow = task.spawn(task.sleep, 60)
task.cancel(slow)
print("slow task:", slow:status())
print(("cpu time used: %.3fs"):format(os.clock() - started))
