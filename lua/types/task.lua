---@meta
-- bioxen.task: coroutines on bioxen's event loop.

---@class bioxen.Task
local Task = {}
---Waits for the task; returns its values or raises its error.
---@return any ...
function Task:wait() end
---Stops the task; waiters get an error of kind "Cancelled".
function Task:cancel() end
---@return boolean
function Task:done() end
---@return "running"|"done"|"failed"|"cancelled"
function Task:status() end

---@class bioxen.task
bioxen.task = {}

---Starts `fn(...)` as a task and returns its handle at once.
---@param fn function
---@return bioxen.Task
function bioxen.task.spawn(fn, ...) end

---Waits `seconds` while other tasks run.
---@param seconds number
function bioxen.task.sleep(seconds) end

---Waits for a task; returns its values or raises its error (kind kept).
---@param task bioxen.Task
---@return any ...
function bioxen.task.wait(task) end

---Waits for all tasks (functions are spawned first); returns their first values in order.
---Raises the first failure after all have finished.
---@param tasks (bioxen.Task|function)[]
---@return any[]
function bioxen.task.all(tasks) end

---@param task bioxen.Task
function bioxen.task.cancel(task) end
