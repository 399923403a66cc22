-- The run's timeline from inside a worker (only when the harness records one): each tick of the
-- health-check manager's two timers with the pools after it, checkers created/kept/rebuilt/
-- destroyed (told apart by comparing the working pool before and after a tick), each probe's
-- result and each health change. Nothing here changes what the code under test does.
local ipc = require("ipc")
local sched = require("sched")

local _M = { on = false }

local function send(ev)
    ev.ev, ev.t = "trace", sched.now_ms()
    ipc.send(ev)
end

-- The manager's timers, in the order init_worker creates them.
local TIMERS = { "create", "working" }
local manager_timers = 0
local tick_error        -- the "failed to run ..." text logged during the tick in progress
local in_tick = false

-- ngx.timer.every wraps each callback with this when the caller is healthcheck_manager.lua.
function _M.wrap_every(fn, source)
    if not _M.on or not source:find("healthcheck_manager%.lua$") then return fn end
    manager_timers = manager_timers + 1
    local timer = TIMERS[manager_timers] or ("timer" .. manager_timers)
    return function(...)
        local before = _M.look().working
        in_tick, tick_error = true, nil
        local results = { pcall(fn, ...) }
        in_tick = false
        local after = _M.look()
        local pools = { waiting = after.waiting, working = {} }
        for path, w in pairs(after.working) do pools.working[path] = { version = w.version, checker = w.checker } end
        send({ kind = "tick", timer = timer, error = tick_error, pools = pools })
        for path, w in pairs(after.working) do
            local old = before[path]
            if not old then
                send({ kind = "checker", action = "created", checker = w.checker, resource = path, version = w.version })
            elseif old.checker ~= w.checker then
                send({ kind = "checker", action = "rebuilt", checker = w.checker, resource = path, version = w.version, previous = old.checker })
            elseif old.version ~= w.version then
                send({ kind = "checker", action = "kept", checker = w.checker, resource = path, version = w.version })
            end
        end
        for path, old in pairs(before) do
            if not after.working[path] then
                send({ kind = "checker", action = "destroyed", checker = old.checker, resource = path, version = old.version })
            end
        end
        if not results[1] then error(results[2], 0) end
        return unpack(results, 2)
    end
end

-- ngx.log tells us what the manager's protected call logged.
function _M.logged(msg)
    if in_tick and not tick_error and msg:find("^failed to run timer_") then
        tick_error = msg:gsub("^failed to run [%w_]+: ", "")
    end
end

-- The checker whose probe is running (set around lua-resty-healthcheck's run_single_check).
local probing

function _M.probe(target, result, ok)
    if _M.on then
        send({ kind = "probe", checker = probing or "?", target = target, result = result, ok = ok })
    end
end

local HEALTH = { healthy = true, mostly_healthy = true, unhealthy = false, mostly_unhealthy = false }

-- resty.events posts: lua-resty-healthcheck raises one per status change.
function _M.event(source, event, data)
    local healthy = HEALTH[event]
    if not _M.on or healthy == nil or type(data) ~= "table" then return end
    local name = source:match("%[(.*)%]$") or source
    send({ kind = "health", checker = name, target = tostring(data.ip) .. ":" .. tostring(data.port), healthy = healthy })
end

-- Label probes with their checker: wrap the library's run_single_check (in its method table,
-- which every checker copies at creation).
function _M.instrument_healthcheck()
    if not _M.on then return end
    local ok, hc = pcall(require, "resty.healthcheck")
    if not ok then return end
    local i = 1
    while true do
        local name, methods = debug.getupvalue(hc.new, i)
        if not name then return end
        if name == "checker" and type(methods) == "table" and methods.run_single_check then
            local run = methods.run_single_check
            methods.run_single_check = function(self, ...)
                local was = probing
                probing = self.name
                local results = { pcall(run, self, ...) }
                probing = was
                if not results[1] then error(results[2], 0) end
                return unpack(results, 2)
            end
            return
        end
        i = i + 1
    end
end

return _M
