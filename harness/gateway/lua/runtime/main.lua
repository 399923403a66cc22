-- A LuaJIT worker of the harness's `lua` engine: loads APISIX's own healthcheck_manager and
-- ai-proxy-multi (unmodified, with the chunk names of the official images) under the ngx shim,
-- then serves commands from the harness until its stdin closes.
--
-- usage: luajit main.lua   (the first stdin line is the boot message: sources, worker id, log
-- level). The modules load at boot, as in nginx's master before the workers fork; with
-- `fork_server` in the boot message this process is that master (master.lua) and each worker
-- it forks serves the commands. The `start` command then gives the run's own settings and runs
-- init_worker.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

-- A run in key order (HARNESS_TABLE_ORDER=sorted): before anything else loads and captures pairs.
if os.getenv("HARNESS_TABLE_ORDER") == "sorted" then require("key_order").install() end

local ipc = require("ipc")
local sched = require("sched")

local init = ipc.read()
if init.line_reader then ipc.load_line_reader(init.line_reader, init.poll_us or 0) end

local ngx_shim = require("ngx_shim")
ngx_shim.install(init)
local world = require("world")
local tcp = require("tcp")
world.init(init)
ngx_shim.current_request = world.current_request
require("stubs").install(init, world)

-- Where each module comes from, and the chunk name it gets: APISIX's tree under
-- /usr/local/apisix/, the libraries it pins under /usr/local/apisix/deps/share/lua/5.1/.
local OFFICIAL_APISIX = "/usr/local/apisix/"
local OFFICIAL_DEPS = "/usr/local/apisix/deps/share/lua/5.1/"

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local src = f:read("*a")
    f:close()
    return src
end

-- A module file: <rel>.lua, else <rel>/init.lua (as package.path's ?/init.lua), with its chunk name.
local function find(dir, rel, official)
    for _, f in ipairs({ rel .. ".lua", rel .. "/init.lua" }) do
        local src = read_file(dir .. "/" .. f)
        if src then
            local fn, err = loadstring(src, "@" .. official .. f)
            if not fn then error(err, 0) end
            return fn
        end
    end
end

local function searcher(name)
    local rel = name:gsub("%.", "/")
    if name == "apisix" or name:match("^apisix%.") then
        return find(init.apisix_root, rel, OFFICIAL_APISIX)
            or ("\n\tno APISIX module '%s' in %s (APISIX %s)"):format(name, init.apisix_root, init.apisix_version)
    end
    for _, dir in ipairs(init.dep_dirs or {}) do
        local fn = find(dir, rel, OFFICIAL_DEPS)
        if fn then return fn end
    end
    return nil
end

-- After preload, before the system paths: APISIX and its pinned libraries win.
table.insert(package.loaders, 2, searcher)
-- Last: one clear line instead of Lua's list of every path it tried.
table.insert(package.loaders, function(name)
    error(("module '%s' not found: neither APISIX %s nor the harness's stubs provide it"):format(name, init.apisix_version), 0)
end)

-- ngx_lua logs an uncaught error of a timer thread this way (no [lua] prefix).
sched.on_abort(function(traceback)
    ipc.send({ ev = "log", t = sched.now_ms(), level = "error", raw = true, msg = "lua entry thread aborted: runtime error: " .. traceback,
               ctx = "context: ngx.timer" })
end)

local function traceback(e)
    return debug.traceback(tostring(e), 2)
end

-- The code under test, loaded once at boot; a failure is reported by `start`.
local loaded, load_error = xpcall(function()
    require("apisix.healthcheck_manager")
    local plugin = require("apisix.plugins.ai-proxy-multi")
    world.prepare_schema(plugin.schema)
end, traceback)

-- Modules the code under test loads on first use (lazily, inside the run): load them now, so a
-- run pays nothing for them. Whichever a version lacks is simply not there.
for _, name in ipairs({
    "resty.healthcheck", "resty.timer", "apisix.core.resolver", "apisix.core.utils", "apisix.core.dns.client",
    "apisix.balancer.roundrobin", "apisix.balancer.priority", "apisix.utils.upstream", "apisix.resource",
    "apisix.plugins.ai-drivers.openai", "apisix.plugins.ai-drivers.deepseek", "apisix.plugins.ai-drivers.openai-compatible",
    "apisix.plugins.ai-drivers.vertex-ai", "apisix.plugins.ai-providers.openai", "apisix.plugins.ai-providers.deepseek",
    "apisix.plugins.ai-providers.openai-compatible", "apisix.plugins.ai-providers.vertex-ai", "dkjson",
}) do
    if loaded then pcall(require, name) end
end

local handlers = {}

function handlers.start(msg)
    if not loaded then error(load_error, 0) end
    local trace = require("trace")
    trace.on, trace.look = msg.trace == true, world.pools
    trace.instrument_healthcheck()
    world.configure(msg)
    math.randomseed(msg.seed or 1)
    require("apisix.core.utils").set_resolver({ "127.0.0.1" })
    require("apisix.healthcheck_manager").init_worker()
    return { loaded = true, jit = jit.status() }
end

function handlers.config(msg)
    world.apply_config(msg)
end

function handlers.advance(msg)
    sched.run_until(msg.until_ms)
end

function handlers.request(msg)
    return world.request(msg)
end

-- The Admin API's check of a plugin conf: the plugin's own check_schema, defaults filled in.
function handlers.check_schema(msg)
    local found, plugin = pcall(require, "apisix.plugins." .. msg.plugin)
    if not found then
        return { ok = false, unknown = true }
    end
    local conf = world.decode(msg.conf)
    local ok, err = plugin.check_schema(conf)
    if not ok then
        return { ok = false, err = tostring(err) }
    end
    return { ok = true, conf = world.encode(conf) }
end

function handlers.inspect()
    return world.inspect()
end

-- When the health-check manager's timers next run (ms; both are armed together in init_worker).
function handlers.next_tick()
    return { next = ngx_shim.manager_next_tick }
end

function handlers.dns(msg)
    world.hosts[msg.name] = msg.ips
end

function handlers.event(msg)
    world.deliver_event(msg.source, msg.event, msg.data)
end

-- A JSON text as Lua: null is nil (at the top level; inside tables it stays cjson's null).
local function from_json(text)
    if text == nil or text == "null" then return nil end
    return world.decode(text)
end

-- Fault injection, as APISIX's tests do it in init_worker: the module's field is replaced, so
-- every caller that looks the function up in the module (the health-check manager does, at
-- each call) gets the replacement. `restore` puts the real function back.
local injected = {}   -- "module.function" -> the real function

local function module_function(msg)
    local mod = require(msg.module)
    if type(mod) ~= "table" then error(("module '%s' is not a table"):format(msg.module), 0) end
    return mod, msg["function"], msg.module .. "." .. msg["function"]
end

function handlers.inject(msg)
    local mod, name, key = module_function(msg)
    local real = injected[key] or mod[name]
    if type(real) ~= "function" then error(("%s is not a function"):format(key), 0) end
    injected[key] = real
    local values, n = {}, #msg.returns
    for i, text in ipairs(msg.returns) do values[i] = from_json(text) end
    local calls, after, raises = 0, msg.after or 0, msg.raises
    mod[name] = function(...)
        calls = calls + 1
        if calls <= after then return real(...) end
        if raises then error(raises, 0) end
        return unpack(values, 1, n)
    end
end

function handlers.restore(msg)
    local mod, name, key = module_function(msg)
    if injected[key] then
        mod[name] = injected[key]
        injected[key] = nil
    end
end

-- A direct call with one JSON argument, `times` times on the same argument; each result and
-- the argument after the call go back as JSON text.
function handlers.call(msg)
    local mod, name, key = module_function(msg)
    local fn = mod[name]
    if type(fn) ~= "function" then error(("%s is not a function"):format(key), 0) end
    local arg = from_json(msg.arg)
    local out = {}
    world.run_now("timer", function()
        for i = 1, msg.times do
            local ok, res, err = pcall(fn, arg)
            local r = { arg = world.encode(arg) }
            if ok then
                r.result, r.error = world.encode(res), world.encode(err)
            else
                r.raised = tostring(res)
            end
            out[i] = r
        end
    end)
    return out
end

-- Another worker's checker of that name sets a target's health in the shared dict: it adds the
-- target with that health when the dict's list lacks it (add_target, as the stale-picker TEST
-- seeds it), and forces it otherwise (set_target_status). Its checks never probe (interval 0).
function handlers.health(msg)
    local healthcheck = require("resty.healthcheck")
    local hostname = msg.hostname or msg.ip
    local present = false
    for _, t in ipairs(healthcheck.get_target_list(msg.checker, "upstream-healthcheck") or {}) do
        if t.ip == msg.ip and t.port == msg.port and t.hostname == hostname then present = true end
    end
    local failure
    world.run_now("timer", function()
        local shadow, err = healthcheck.new({
            name = msg.checker,
            shm_name = "upstream-healthcheck",
            events_module = "resty.events",
            checks = { active = { healthy = { interval = 0 }, unhealthy = { interval = 0 } } },
        })
        if not shadow then
            failure = "healthcheck.new: " .. tostring(err)
            return
        end
        local ok, aerr
        if present then
            ok, aerr = shadow:set_target_status(msg.ip, msg.port, hostname, msg.healthy)
        else
            ok, aerr = shadow:add_target(msg.ip, msg.port, hostname, msg.healthy)
        end
        shadow:stop()
        if not ok then failure = tostring(aerr) end
    end)
    if failure then error(failure, 0) end
    return { forced = present }
end

-- Forked from the master (the harness's usual way): the boot above is done once per master.
if init.fork_server then require("master").serve(init.fork_server, init.jit == "on") end

while true do
    local msg = ipc.read()
    if msg.now_ms then sched.set_now(msg.now_ms) end
    if msg.connects then tcp.set_known_connects(msg.connects) end
    local h = handlers[msg.cmd]
    local ok, res
    if not h then
        ok, res = false, "unknown command " .. tostring(msg.cmd)
    else
        ok, res = xpcall(h, traceback, msg)
    end
    local reply = { done = msg.id, next = sched.next_due() }
    if ok then reply.result = res else reply.error = res end
    ipc.send(reply)
    ipc.flush()
end
