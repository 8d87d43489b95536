-- fib(32) ten times, recursive: calls and integer arithmetic.
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local r for _ = 1, (... or 10) do r = fib(32) end
return r
