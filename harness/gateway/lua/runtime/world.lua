-- The gateway around the code under test, as one worker sees it: config objects built from the
-- harness's watch events (a new table per change, as core/config_etcd does), the resolver's
-- host table, the data-plane request in flight, and the bridges into the harness (JSON Schema,
-- events between workers).
local ipc = require("ipc")
local config_json = require("config_json")
local sched = require("sched")

local W = {}

local opts
local stores = {}              -- "/routes" -> store
local request_state            -- the data-plane request being handled, if any

function W.init(o)
    opts = o
    W.hosts = {}
    W.local_conf = {
        apisix = { enable_ipv6 = false, node_listen = { 9080 } },
        deployment = { role = "traditional", role_traditional = { config_provider = "etcd" } },
        etcd = { prefix = "/apisix" },
        nginx_config = { error_log_level = o.log_level },
    }
end

-- The run's own settings, given at `start`: etcd prefix and the resolver's host table.
function W.configure(run)
    opts.prefix = run.prefix
    W.local_conf.etcd.prefix = run.prefix
    W.hosts = run.hosts or {}
end

---------------------------------------------------------------------------------------------
-- config: what core.config.fetch_created_obj returns, fed by `config` commands

local Store = {}
Store.__index = Store

function Store:get(id)
    local i = self.values_hash[tostring(id)]
    return i and self.values[i] or nil
end

local function store_for(rtype)
    local s = stores[rtype]
    if not s then
        s = setmetatable({ key = rtype, values = {}, values_hash = {}, conf_version = 0 }, Store)
        stores[rtype] = s
    end
    return s
end

W.config_side = {
    type = "etcd",
    fetch_created_obj = function(key) return stores[key] end,
    new = function(key) return store_for(key) end,
}

local function decode_value(text)
    return config_json.decode(text, require("cjson.safe").array_mt, ipc.null)
end

-- The plugins whose check_schema runs when a config item arrives (the others are not loaded).
local CHECKED_PLUGINS = { ["ai-proxy-multi"] = true }

local function check_item(value)
    for name, conf in pairs(type(value.plugins) == "table" and value.plugins or {}) do
        if CHECKED_PLUGINS[name] then
            if type(conf) ~= "table" then
                return false, "invalid plugin conf for plugin [" .. name .. "]"
            end
            local ok, err = require("apisix.plugins." .. name).check_schema(conf)
            if not ok then
                return false, "failed to check the configuration of plugin " .. name .. " err: " .. tostring(err)
            end
        end
    end
    return true
end

local function split_key(key)
    local rest = key:sub(#opts.prefix + 1)
    local rtype, id = rest:match("^(/[^/]+)/(.+)$")
    return rtype, id
end

local function put_item(e)
    local rtype, id = split_key(e.key)
    if not rtype then return end
    local s = store_for(rtype)
    local value, err = decode_value(e.value)
    s.conf_version = s.conf_version + 1
    if type(value) ~= "table" then
        ngx.log(ngx.ERR, "invalid item data of [", rtype .. "/" .. id, "], val: ", e.value,
                ", it should be an object", err and (": " .. err) or "")
        return
    end
    local ok, cerr = check_item(value)
    if not ok then
        ngx.log(ngx.ERR, "failed to check item data of [", rtype, "] err:", cerr, " ,val: ", e.value)
        return
    end
    value.id = id
    local item = { key = e.key, value = value, modifiedIndex = e.modifiedIndex,
                   createdIndex = e.createdIndex, clean_handlers = {} }
    if rtype == "/routes" then
        item.orig_modifiedIndex = item.modifiedIndex
        item.has_domain = false
        require("apisix.plugin").set_plugins_meta_parent(value.plugins, item)
    end
    local i = s.values_hash[id]
    if i then
        s.values[i] = item
    else
        s.values[#s.values + 1] = item
        s.values_hash[id] = #s.values
    end
end

local function delete_item(key)
    local rtype, id = split_key(key)
    local s = rtype and stores[rtype]
    if not s then return end
    local i = s.values_hash[id]
    if not i then return end
    table.remove(s.values, i)
    s.values_hash = {}
    for j, item in ipairs(s.values) do
        s.values_hash[item.value.id] = j
    end
    s.conf_version = s.conf_version + 1
end

-- Apply watch events (or a full reload) in a timer thread, as config_etcd's sync does. A reload
-- rebuilds every object but those the harness says survived it (`kept`: 3.18.0 keeps the objects
-- whose modifiedIndex did not change).
function W.apply_config(msg)
    sched.spawn("timer", nil, function()
        if msg.reload then
            local kept = {}
            for _, key in ipairs(msg.kept or {}) do kept[key] = true end
            local old = {}
            for _, s in pairs(stores) do
                for _, item in ipairs(s.values) do old[item.key] = item end
                s.values, s.values_hash = {}, {}
                s.conf_version = s.conf_version + 1
            end
            for _, e in ipairs(msg.reload) do
                local prev = old[e.key]
                if kept[e.key] and prev then
                    local rtype, id = split_key(e.key)
                    local s = store_for(rtype)
                    s.values[#s.values + 1] = prev
                    s.values_hash[id] = #s.values
                else
                    put_item(e)
                end
            end
            return
        end
        for _, e in ipairs(msg.ops or {}) do
            if e.op == "put" then put_item(e) else delete_item(e.key) end
        end
    end)
end

---------------------------------------------------------------------------------------------
-- core.schema: JSON Schema checks run by the harness's validator; defaults are written back
-- into the checked table, as APISIX's validator does.

local schema_ids = setmetatable({}, { __mode = "k" })
local unsent = {}          -- id -> schema text encoded at boot, sent with its first check
local next_schema_id = 0

local function merge_defaults(target, filled)
    if type(target) ~= "table" or type(filled) ~= "table" then return end
    for k, v in pairs(filled) do
        local key = k
        if type(k) == "string" and #target > 0 and k:match("^%d+$") then key = tonumber(k) end
        local cur = target[key]
        if cur == nil then
            target[key] = v
        elseif type(cur) == "table" then
            merge_defaults(cur, v)
        end
    end
end

local encode = require("jsonenc")
W.encode, W.decode = encode, decode_value

-- Encode a schema the run will check against before the run starts (the worker boots ahead).
function W.prepare_schema(schema)
    if schema_ids[schema] then return end
    next_schema_id = next_schema_id + 1
    schema_ids[schema] = next_schema_id
    unsent[next_schema_id] = encode(schema)
end

W.schema_side = setmetatable({
    check = function(schema, value)
        local id = schema_ids[schema]
        local schema_text
        if not id then
            next_schema_id = next_schema_id + 1
            id = next_schema_id
            schema_ids[schema] = id
            schema_text = encode(schema)
        elseif unsent[id] then
            schema_text = unsent[id]
            unsent[id] = nil
        end
        local r = ipc.call({ call = "schema", id = id, schema = schema_text, value = encode(value) })
        if r.ok then
            if r.filled then merge_defaults(value, decode_value(r.filled)) end
            return true
        end
        return false, r.err
    end,
    TYPE_CONSUMER = 1, TYPE_METADATA = 2, TYPE_STREAM = 3,
}, { __index = function() return {} end })

---------------------------------------------------------------------------------------------
-- apisix/plugin.lua, the four functions the code under test calls

W.plugin_side = {
    conf_version = function(conf)
        if not conf._version then
            local data = require("apisix.core").json.stably_encode(conf)
            conf._version = tostring(ngx.crc32_short(data))
        end
        return conf._version
    end,
    set_plugins_meta_parent = function(plugins, parent)
        if type(plugins) ~= "table" then return end
        for _, conf in pairs(plugins) do
            if type(conf) == "table" then
                conf._meta = conf._meta or {}
                if not conf._meta.parent then
                    local parent_info = { resource_key = parent.key, resource_version = tostring(parent.modifiedIndex) }
                    local mt = getmetatable(conf._meta)
                    if mt then mt.parent = parent_info
                    else setmetatable(conf._meta, { __index = { parent = parent_info } }) end
                end
            end
        end
    end,
    lua_response_filter = function(ctx, headers, body)
        ctx._harness_response = { headers = headers, body = body }
    end,
    get = function(name) return require("apisix.plugins." .. name) end,
}

---------------------------------------------------------------------------------------------
-- the request in flight: core.request / core.response / ngx.req read from it

local function missing(mod)
    return setmetatable({}, { __index = function(_, fn)
        error(("%s.%s is not provided by the harness (APISIX %s)"):format(mod, fn, opts.apisix_version), 2)
    end })
end

W.request_side = setmetatable({
    get_body = function() return request_state and request_state.body end,
    get_json_request_body_table = function()
        if not request_state then return nil, "no request" end
        local v, err = require("cjson.safe").decode(request_state.body or "")
        if not v then return nil, "could not get parse JSON request body: " .. tostring(err) end
        return v
    end,
    header = function(_, name) return request_state and request_state.headers[name:lower()] end,
    headers = function() return request_state and request_state.headers or {} end,
    get_method = function() return request_state and request_state.method end,
    get_scheme = function() return "http" end,
    get_host = function() return "127.0.0.1" end,
    get_port = function() return 9080 end,
    get_remote_client_ip = function() return "127.0.0.1" end,
    get_uri_args = function() return {} end,
}, getmetatable(missing("apisix.core.request")))

W.response_side = setmetatable({
    exit = function(code, body)
        error({ harness_exit = true, code = code, body = body }, 0)
    end,
    set_header = function() end,
    add_header = function() end,
    clear_header_as_body_modified = function() end,
}, getmetatable(missing("apisix.core.response")))

W.ctx_side = setmetatable({
    register_var = function() end,
}, getmetatable(missing("apisix.core.ctx")))

W.http_side = missing("resty.http")

-- Run fn in its own coroutine of that phase until it ends: it waits (a lock, a sleep) in
-- virtual time of its own, as a request does.
function W.run_now(phase, fn)
    local rec = sched.spawn(phase, nil, fn)
    while not rec.done do
        local due = sched.next_due()
        if not due then break end
        sched.run_until(due)
    end
    return rec
end

function W.current_request()
    return request_state
end

local function route_item(key)
    local rtype, id = split_key(key)
    local s = rtype and stores[rtype]
    return s and s:get(id)
end

-- ai-proxy-multi's access phase for one request; the harness forwards to the picked instance.
function W.request(msg)
    local route = route_item(msg.route)
    if not route then return { status = 404, body = '{"error_msg":"404 Route Not Found"}' } end
    local conf = route.value.plugins and route.value.plugins["ai-proxy-multi"]
    if not conf then return { status = 502, body = "route has no ai-proxy-multi" } end
    local headers = {}
    for k, v in pairs(msg.headers or {}) do headers[k:lower()] = v end
    request_state = { method = msg.method, uri = msg.uri, headers = headers, body = msg.body,
                      host = headers.host }
    local ctx = {
        var = setmetatable({ uri = msg.uri, request_method = msg.method, host = "127.0.0.1" }, {
            __index = function(_, k)
                local h = k:match("^http_(.+)$")
                return h and headers[(h:gsub("_", "-"))] or nil
            end,
        }),
        matched_route = route,
        conf_type = "route",
        conf_id = route.value.id,
        conf_version = route.modifiedIndex,
    }
    ngx.ctx = ctx
    local out = {}
    local plugin = require("apisix.plugins.ai-proxy-multi")
    W.run_now("access", function()
        local ok, code, body = xpcall(plugin.access, function(e)
            if type(e) == "table" and e.harness_exit then return e end
            return { traceback = debug.traceback(tostring(e), 2), message = tostring(e) }
        end, conf, ctx)
        if not ok then
            if code.harness_exit then
                out.status, out.body = code.code, code.body
                return
            end
            ngx.log(ngx.ERR, "lua entry thread aborted: runtime error: ", code.traceback)
            out.status, out.lua_error = 500, code.traceback
            return
        end
        if code then
            out.status = code
            out.body = type(body) == "table" and require("apisix.core").json.encode(body) or body
            return
        end
        local ins = ctx.picked_ai_instance
        out.instance = ctx.picked_ai_instance_name
        if ins then
            local node = ins._dns_value
            if node then
                out.node = { host = node.host, port = node.port, scheme = node.scheme, domain = node.domain }
            end
            out.conf = ins
        end
    end)
    request_state = nil
    ngx.ctx = {}
    return out
end

---------------------------------------------------------------------------------------------
-- events between workers

function W.post_event(source, event, data)
    W.deliver_event(source, event, data)
    if opts.worker_count > 1 then
        ipc.send({ ev = "event", source = source, event = event, data = data })
    end
end

---------------------------------------------------------------------------------------------
-- what the harness may look at: the manager's pools and each checker's targets

local function upvalue(fn, name)
    local i = 1
    while true do
        local n, v = debug.getupvalue(fn, i)
        if not n then return nil end
        if n == name then return v end
        i = i + 1
    end
end

function W.inspect()
    W.inspecting = true
    local ok, out = pcall(W.look)
    W.inspecting = false
    if not ok then error(out, 0) end
    return out
end

local function manager_pools()
    local hm = require("apisix.healthcheck_manager")
    return upvalue(hm.fetch_checker, "working_pool") or {}, upvalue(hm.fetch_checker, "waiting_pool") or {}
end

-- A checker's identity: its table's address. The collector may give a new table the address of
-- a collected one, so a table first seen at an address already given out gets `#n` after it: a
-- rebuilt checker never reads as the one it replaced.
local ids = setmetatable({}, { __mode = "k" })   -- checker table -> its identity
local tables_at = {}                             -- address -> how many tables were seen there

local function checker_id(c)
    local id = ids[c]
    if id then return id end
    id = tostring(c):gsub("^table: ", "checker@")
    local n = (tables_at[id] or 0) + 1
    tables_at[id] = n
    if n > 1 then id = id .. "#" .. n end
    ids[c] = id
    return id
end

-- The manager's pools as plain data (no shared-dict reads, so it has no effect on the run).
function W.pools()
    local working, waiting = manager_pools()
    local out = { waiting = {}, working = {} }
    for path, ver in pairs(waiting) do out.waiting[path] = tostring(ver) end
    for path, item in pairs(working) do
        out.working[path] = { version = tostring(item.version), checker = checker_id(item.checker), dead = item.checker.dead == true }
    end
    return out
end

-- The pools and each working checker's targets with their health from the shared dict.
function W.look()
    local working = manager_pools()
    local out = W.pools()
    local hc = package.loaded["resty.healthcheck"]
    for path, item in pairs(working) do
        local c = item.checker
        local targets = {}
        local list = hc and hc.get_target_list and hc.get_target_list(c.name, c.shm_name) or {}
        for _, t in ipairs(list) do
            targets[#targets + 1] = {
                ip = t.ip, port = t.port, hostname = t.hostname, status = t.status or "healthy",
                counter = t.counter,
            }
        end
        local w = out.working[path]
        w.type = c.checks and c.checks.active and c.checks.active.type or "http"
        w.status_ver = c.status_ver
        w.targets = targets
    end
    return out
end

return W
