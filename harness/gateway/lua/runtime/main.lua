-- A LuaJIT worker of the harness's `lua` engine: loads APISIX's own healthcheck_manager and
-- ai-proxy-multi (unmodified, with the chunk names of the official images) under the ngx shim,
-- then serves commands from the harness until its stdin closes.
--
-- usage: luajit main.lua   (the first stdin line is the boot message: sources, worker id, log
-- level). The modules load at boot, as in nginx's master before the workers fork; the `start`
-- command then gives the run's own settings and runs init_worker.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local ipc = require("ipc")
local sched = require("sched")

local init = ipc.read()

local ngx_shim = require("ngx_shim")
ngx_shim.install(init)
local world = require("world")
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
    return { loaded = true }
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

function handlers.dns(msg)
    world.hosts[msg.name] = msg.ips
end

function handlers.event(msg)
    world.deliver_event(msg.source, msg.event, msg.data)
end

while true do
    local msg = ipc.read()
    if msg.now_ms then sched.set_now(msg.now_ms) end
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
