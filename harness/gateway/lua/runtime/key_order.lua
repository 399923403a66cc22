-- Walk every table in key order instead of LuaJIT's hash order: `pairs` and `next` replaced for
-- the whole worker (installed before any module loads, so `local pairs = pairs` captures them).
-- A run with this order has no chance left in which key a walk reaches first, so a disagreement
-- between the engines that goes away here came from pairs() order, not from the model.
--
-- The order is total over any keys a table can hold: numbers (by value) < strings (byte order,
-- as Lua's `<`) < booleans (false first) < anything else (by type name, then tostring). It does
-- not look at what the keys are for.
--
-- The protocol is Lua's: `next(t, k)` gives the key after k, nil at the end; during a walk a
-- field may be set to nil (or changed), and the walk goes on past it; adding keys during a walk
-- is undefined in Lua and here a new key is simply not visited by a walk already under way.
-- C functions that call lua_next (cjson's encode) still see hash order.
local M = {}

local raw_next, sort, type, tostring, rawget, setmetatable, error = next, table.sort, type, tostring, rawget, setmetatable, error
-- (LuaJIT's pairs ignores __pairs, so this one does too.)

local RANK = { number = 1, string = 2, boolean = 3 }

local function less(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then
        local ra, rb = RANK[ta] or 4, RANK[tb] or 4
        if ra ~= rb then return ra < rb end
        return ta < tb
    end
    if ta == "number" or ta == "string" then return a < b end
    if ta == "boolean" then return (not a) and b end
    return tostring(a) < tostring(b)
end
M.less = less

-- The keys of t in order, and where each one is (a snapshot: t may change while it is walked).
local function snapshot(t)
    local keys, n = {}, 0
    local k = raw_next(t)
    while k ~= nil do
        n = n + 1
        keys[n] = k
        k = raw_next(t, k)
    end
    sort(keys, less)
    local at = {}
    for i = 1, n do at[keys[i]] = i end
    return { keys = keys, n = n, at = at }
end

-- The snapshot of the walk under way per table, so that next(t, k) in a loop costs O(1) a step.
-- Weak keys: a table nobody holds takes its snapshot with it.
local walks = setmetatable({}, { __mode = "k" })

-- The first key after position i in s whose field is still set (fields set to nil are skipped).
local function after(t, s, i)
    for j = i + 1, s.n do
        local k = s.keys[j]
        local v = rawget(t, k)
        if v ~= nil then return k, v end
    end
    return nil
end

function M.next(t, k)
    if type(t) ~= "table" then error("bad argument #1 to 'next' (table expected, got " .. type(t) .. ")", 2) end
    if k == nil then
        if raw_next(t) == nil then
            walks[t] = nil
            return nil
        end
        local s = snapshot(t)
        walks[t] = s
        return after(t, s, 0)
    end
    local s = walks[t]
    local i = s and s.at[k]
    if not i then
        -- A walk that did not start here (or a key added since): the key must be in the table.
        if rawget(t, k) == nil then error("invalid key to 'next'", 2) end
        s = snapshot(t)
        walks[t] = s
        i = s.at[k]
    end
    return after(t, s, i)
end

function M.pairs(t)
    if type(t) ~= "table" then error("bad argument #1 to 'pairs' (table expected, got " .. type(t) .. ")", 2) end
    local s = snapshot(t)
    local i = 0
    -- Its own iterator (not M.next): nested and interleaved walks of one table stay independent.
    return function()
        while i < s.n do
            i = i + 1
            local k = s.keys[i]
            local v = rawget(t, k)
            if v ~= nil then return k, v end
        end
        return nil
    end, t, nil
end

-- Replace the globals; modules loaded afterwards see only these.
function M.install()
    next = M.next
    pairs = M.pairs
end

return M
