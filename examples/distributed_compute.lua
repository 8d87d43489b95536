-- Distributed computation: GC content and k-mer counts of a FASTA file, spread
-- over N worker VMs with bioxen.cluster, checked against a single-VM run.
--
--   bioxen examples/distributed_compute.lua [workers=2] [megabases=4] [backend=thread]
--
-- The FASTA file is generated here (seeded, so every run is the same), written
-- to a temporary file and read back like any input would be.
local cluster, vm = bioxen.cluster, bioxen.vm
local workers = tonumber(arg and arg[1]) or 2
local megabases = tonumber(arg and arg[2]) or 4
local backend = arg and arg[3] or "thread"
local K = 4
local now = bioxen.channel.now

-- 1. A seeded FASTA file: records of 1-3 kb with varying GC bias.
local path = os.tmpname()
do
  math.randomseed(20261121)
  local out = assert(io.open(path, "w"))
  local bases, total, n = { "A", "C", "G", "T" }, 0, 0
  while total < megabases * 1e6 do
    n = n + 1
    local len = math.random(1000, 3000)
    local gc = 0.3 + 0.4 * math.random()
    local seq = {}
    for i = 1, len do
      local r = math.random()
      seq[i] = r < gc and (r < gc / 2 and "G" or "C") or (r < (1 + gc) / 2 and "A" or "T")
    end
    seq = table.concat(seq)
    out:write(">seq", n, " gc_bias=", string.format("%.3f", gc), "\n")
    for i = 1, #seq, 70 do out:write(seq:sub(i, i + 69), "\n") end
    total = total + len
  end
  out:close()
  _ = bases
end

-- 2. Read it back into records.
local records = {}
do
  local name, parts = nil, {}
  for line in io.lines(path) do
    if line:sub(1, 1) == ">" then
      if name then records[#records + 1] = { name = name, seq = table.concat(parts) } end
      name, parts = line:sub(2):match("^(%S+)"), {}
    else
      parts[#parts + 1] = line
    end
  end
  if name then records[#records + 1] = { name = name, seq = table.concat(parts) } end
end
os.remove(path)

-- 3. The work, as source text: runs inside the sandboxed worker VMs.
local analyse = [[
function(chunk)
  local k = K
  local gc, at, kmers, per_record = 0, 0, {}, {}
  for _, rec in ipairs(chunk) do
    local s = rec.seq
    local g = select(2, s:gsub("[GC]", ""))
    local a = select(2, s:gsub("[AT]", ""))
    gc, at = gc + g, at + a
    per_record[#per_record + 1] = { rec.name, g / #s }
    for i = 1, #s - k + 1 do
      local w = s:sub(i, i + k - 1)
      kmers[w] = (kmers[w] or 0) + 1
    end
  end
  return { gc = gc, at = at, kmers = kmers, per_record = per_record }
end
]]

local function merge(parts)
  local total = { gc = 0, at = 0, kmers = {}, per_record = {} }
  for _, p in ipairs(parts) do
    total.gc, total.at = total.gc + p.gc, total.at + p.at
    for w, n in pairs(p.kmers) do total.kmers[w] = (total.kmers[w] or 0) + n end
    for _, r in ipairs(p.per_record) do total.per_record[#total.per_record + 1] = r end
  end
  return total
end

-- Split the records into `n` chunks of about the same number of bases.
local function chunks(n)
  local out, size, total = {}, 0, 0
  for _, r in ipairs(records) do total = total + #r.seq end
  local target = total / n
  local cur = {}
  for _, r in ipairs(records) do
    cur[#cur + 1] = r
    size = size + #r.seq
    if size >= target and #out < n - 1 then out[#out + 1], cur, size = cur, {}, 0 end
  end
  out[#out + 1] = cur
  return out
end

-- 4. Single VM, the reference.
local t0 = now()
local single = vm.create{ backend = backend, sandbox = "standard", timeout = 600, globals = { K = K } }
single:exec("analyse = " .. analyse)
local reference = merge({ (single:call("analyse", records)) })
single:close()
local t_single = now() - t0

-- 5. The cluster: many chunks (load balancing), N workers.
t0 = now()
local c = cluster.new{ size = workers, backend = backend, sandbox = "standard", env = { K = K }, timeout = 600 }
local results, failures = c:map(analyse, chunks(workers * 4))
local t_cluster = now() - t0
assert(failures == nil, failures and failures[1].error)
local distributed = merge(results)

-- 5b. The same, MPI style: one contiguous slice of the records per worker.
c:scatter(records)
local by_worker, gather_failures = c:gather(analyse)
c:close()
assert(gather_failures == nil, gather_failures and gather_failures[1].error)
local gathered = merge(by_worker)

-- 6. Same answer?
local function same(a, b)
  if a.gc ~= b.gc or a.at ~= b.at or #a.per_record ~= #b.per_record then return false end
  for w, n in pairs(a.kmers) do if b.kmers[w] ~= n then return false end end
  for w, n in pairs(b.kmers) do if a.kmers[w] ~= n then return false end end
  for i, r in ipairs(a.per_record) do
    if r[1] ~= b.per_record[i][1] or r[2] ~= b.per_record[i][2] then return false end
  end
  return true
end
assert(same(reference, distributed), "the cluster's answer differs from the single VM's")
assert(same(reference, gathered), "scatter/gather's answer differs from the single VM's")

local bases = reference.gc + reference.at
local top = {}
for w, n in pairs(reference.kmers) do top[#top + 1] = { w, n } end
table.sort(top, function(x, y) return x[2] > y[2] or (x[2] == y[2] and x[1] < y[1]) end)
print(("%d records, %.2f Mb, GC %.2f%%, %d distinct %d-mers; most common: %s (%d), %s (%d), %s (%d)")
  :format(#records, bases / 1e6, 100 * reference.gc / bases, #top, K,
    top[1][1], top[1][2], top[2][1], top[2][2], top[3][1], top[3][2]))
print(("single VM: %.2fs; %d %s workers: %.2fs (%.2fx); map and scatter/gather results identical")
  :format(t_single, workers, backend, t_cluster, t_single / t_cluster))
