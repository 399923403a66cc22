-- Virtual time for one worker: ngx.timer.*, ngx.sleep and ngx.thread.* as coroutines that the
-- harness resumes when it moves the clock (`run_until`). Each timer callback and each request
-- runs in its own coroutine, as in ngx_lua, so an error ends that run only.
local _M = {}

local SLEEP, WAIT = {}, {}
_M.SLEEP, _M.WAIT = SLEEP, WAIT

local now_ms = 0
local seq = 0
local heap = {}          -- entries {due, seq, co, args, n}
local phase_of = setmetatable({}, { __mode = "k" })   -- coroutine -> "timer" | "access" | ...
local threads = setmetatable({}, { __mode = "k" })    -- coroutine -> thread record
local on_abort           -- function(err, co, phase) for uncaught errors

function _M.now_ms() return now_ms end
function _M.set_now(ms) if ms > now_ms then now_ms = ms end end
function _M.on_abort(fn) on_abort = fn end

local function less(a, b)
    if a.due ~= b.due then return a.due < b.due end
    return a.seq < b.seq
end

local function push(e)
    heap[#heap + 1] = e
    local i = #heap
    while i > 1 do
        local p = math.floor(i / 2)
        if less(heap[i], heap[p]) then
            heap[i], heap[p] = heap[p], heap[i]
            i = p
        else
            break
        end
    end
end

local function pop()
    local top = heap[1]
    local last = heap[#heap]
    heap[#heap] = nil
    if #heap > 0 then
        heap[1] = last
        local i, n = 1, #heap
        while true do
            local l, r, m = i * 2, i * 2 + 1, i
            if l <= n and less(heap[l], heap[m]) then m = l end
            if r <= n and less(heap[r], heap[m]) then m = r end
            if m == i then break end
            heap[i], heap[m] = heap[m], heap[i]
            i = m
        end
    end
    return top
end

-- nginx keeps timers in whole milliseconds; so does this clock (and its times cross JSON exactly).
local function schedule(due, co, args, n)
    due = math.ceil(due)
    seq = seq + 1
    push({ due = due, seq = seq, co = co, args = args, n = n or 0 })
end

function _M.next_due()
    return heap[1] and heap[1].due or nil
end

function _M.pending()
    return #heap
end

function _M.phase()
    local co = coroutine.running()
    return co and phase_of[co] or "init_worker"
end

function _M.current_thread()
    local co = coroutine.running()
    return co and threads[co]
end

local resume

local function finished(rec, ok, ...)
    rec.done = true
    if ok then
        rec.results = { n = select("#", ...), ... }
    else
        rec.error = (...)
    end
    for _, waiter in ipairs(rec.waiters) do
        schedule(now_ms, waiter, { n = 0 }, 0)
    end
    rec.waiters = {}
end

-- Resume a coroutine and act on what it yields.
function resume(co, ...)
    local rec = threads[co]
    local ok, a, b = coroutine.resume(co, ...)
    if not ok then
        finished(rec, false, a)
        if not rec.parent and on_abort then
            on_abort(debug.traceback(co, a), co, phase_of[co])
        end
        return
    end
    if coroutine.status(co) == "dead" then
        finished(rec, true, a, b)
        return
    end
    if a == SLEEP then
        schedule(now_ms + math.max(0, b) * 1000, co, { n = 0 }, 0)
    elseif a == WAIT then
        -- b is the awaited thread record; we are resumed when it finishes
        table.insert(b.waiters, co)
    else
        -- someone else's yield (a user coroutine); treat as ngx.sleep(0)
        schedule(now_ms, co, { n = 0 }, 0)
    end
end

-- Start fn in a new coroutine right away, as ngx_lua does for requests and spawned threads.
function _M.spawn(phase, parent, fn, ...)
    local co = coroutine.create(fn)
    phase_of[co] = phase
    local rec = { co = co, waiters = {}, parent = parent }
    threads[co] = rec
    resume(co, ...)
    return rec
end

-- When a timer armed now with this delay (s) falls due, in whole ms.
function _M.due_after(delay)
    return math.ceil(now_ms + math.max(0, delay) * 1000)
end

function _M.timer_at(delay, fn, ...)
    local args = { n = select("#", ...) + 1, false, ... }
    local co = coroutine.create(function(...) return fn(...) end)
    phase_of[co] = "timer"
    threads[co] = { co = co, waiters = {} }
    schedule(_M.due_after(delay), co, args, args.n)
    return true
end

function _M.sleep(seconds)
    local co = coroutine.running()
    if not co then
        error("API disabled in the context of init_worker_by_lua*", 2)
    end
    coroutine.yield(SLEEP, seconds or 0)
end

function _M.wait(rec)
    if not rec.done then
        coroutine.yield(WAIT, rec)
    end
    if rec.error then
        return false, rec.error
    end
    return true, unpack(rec.results, 1, rec.results.n)
end

-- Run every timer and sleeper due at or before `limit` (ms), in (due, creation) order.
-- ngx.now() reads each entry's due time while it runs.
function _M.run_until(limit)
    while heap[1] and heap[1].due <= limit do
        local e = pop()
        if e.due > now_ms then now_ms = e.due end
        if coroutine.status(e.co) == "suspended" then
            resume(e.co, unpack(e.args, 1, e.n))
        end
    end
    if limit > now_ms then now_ms = limit end
end

return _M
