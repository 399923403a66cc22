-- Modules the harness provides instead of the real ones: OpenResty C modules, the networking
-- and config-cache side of apisix.core, and plugins outside the code under test. Each stub is
-- named after what it replaces; each does only what the loaded APISIX code calls.
local ipc = require("ipc")
local sched = require("sched")
local codec = require("codec")
local regex = require("regex")

local _M = {}

local preload = package.preload

local function module(name, tbl)
    preload[name] = function() return tbl end
end

-- A table whose every missing function is a no-op returning nil (metrics exporters and the like).
local function inert(name)
    return setmetatable({}, { __index = function() return function() end end, __tostring = function() return name end })
end

function _M.install(opts, world)
    local ngx = _G.ngx

    -- OpenResty's lua-cjson additions that apisix/core/json.lua calls; Debian's cjson lacks them.
    local cjson = require("cjson")
    local cjson_safe = require("cjson.safe")
    local array_mt = {}
    local empty_array_mt = {}
    for _, c in ipairs({ cjson, cjson_safe }) do
        c.encode_escape_forward_slash = c.encode_escape_forward_slash or function() end
        c.decode_array_with_array_mt = c.decode_array_with_array_mt or function() end
        c.array_mt = c.array_mt or array_mt
        c.empty_array_mt = c.empty_array_mt or empty_array_mt
        c.empty_array = c.empty_array or setmetatable({}, empty_array_mt)
    end

    module("ngx.re", regex)
    module("ngx.errlog", {
        get_sys_filter_level = function() return require("ngx_shim").filter_level end,
        set_filter_level = function() return true end,
        raw_log = function(level, msg) ngx.log(level, msg) end,
        get_logs = function() return {} end,
    })
    module("ngx.process", { type = function() return "worker" end, get_master_pid = function() return 1 end })
    module("ngx.ssl", {
        parse_pem_cert = function() return nil, "no TLS in the harness" end,
        parse_pem_priv_key = function() return nil, "no TLS in the harness" end,
    })
    module("ngx.base64", {
        encode_base64url = function(s) return (codec.encode_base64(s):gsub("+", "-"):gsub("/", "_"):gsub("=", "")) end,
    })
    module("tablepool", {
        fetch = function(_, narr, nrec) return require("table.new")(narr or 0, nrec or 0) end,
        release = function() end,
    })

    -- resty.lock on an ngx.shared dict, waiting in virtual time.
    do
        local Lock = {}
        Lock.__index = Lock
        module("resty.lock", {
            new = function(_, dict_name, o)
                o = o or {}
                return setmetatable({ dict = ngx.shared[dict_name], exptime = o.exptime or 30,
                                      timeout = o.timeout or 5, step = o.step or 0.001 }, Lock)
            end,
        })
        function Lock:lock(key)
            -- The harness only reads while it looks at a worker: it takes no lock, so it never
            -- waits for (or on) a worker's lock.
            if world.inspecting then
                self.key = nil
                return 0
            end
            local waited, step = 0, self.step
            while true do
                local ok, err = self.dict:add(key, true, self.exptime)
                if ok then
                    self.key = key
                    return waited
                end
                if err ~= "exists" then return nil, err end
                if waited >= self.timeout or self.timeout == 0 then return nil, "timeout" end
                sched.sleep(step)
                waited = waited + step
                step = math.min(step * 2, 0.5)
            end
        end
        function Lock:unlock()
            if world.inspecting then return 1 end
            if not self.key then return nil, "unlocked" end
            self.dict:delete(self.key)
            self.key = nil
            return 1
        end
        function Lock:expire(t)
            if not self.key then return nil, "unlocked" end
            return self.dict:expire(self.key, t or self.exptime)
        end
    end

    -- resty.events (through its compat API, as lua-resty-healthcheck uses it): handlers run in a
    -- 0-delay timer, in every worker.
    do
        local handlers = {}   -- source -> list of {cb, events}
        local function deliver(source, event, data)
            require("trace").event(source, event, data)
            for _, h in ipairs(handlers[source] or {}) do
                if not h.events or h.events[event] then
                    local ok, err = pcall(h.cb, data, event, source, opts.pid)
                    if not ok then
                        ngx.log(ngx.ERR, "event handler failed: ", err)
                    end
                end
            end
        end
        world.deliver_event = function(source, event, data)
            ngx.timer.at(0, function() deliver(source, event, data) end)
        end
        local function register(cb, source, ...)
            local evs = select("#", ...) > 0 and {} or nil
            for i = 1, select("#", ...) do evs[select(i, ...)] = true end
            handlers[source] = handlers[source] or {}
            table.insert(handlers[source], { cb = cb, events = evs })
            return true
        end
        module("resty.events.compat", {
            _VERSION = "0.1.3",
            configured = function() return true end,
            configure = function() return true end,
            poll = function() return "done" end,
            post = function(source, event, data)
                world.post_event(source, event, data)
                return true
            end,
            post_local = function(source, event, data)
                world.deliver_event(source, event, data)
                return true
            end,
            register = register,
            register_weak = register,
            unregister = function(cb, source)
                local list = handlers[source] or {}
                for i = #list, 1, -1 do
                    if list[i].cb == cb then table.remove(list, i) end
                end
                return true
            end,
        })
    end

    module("resty.ipmatcher", {
        parse_ipv4 = function(ip)
            if type(ip) ~= "string" then return false end
            local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
            if not a then return false end
            a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
            if a > 255 or b > 255 or c > 255 or d > 255 then return false end
            return ((a * 256 + b) * 256 + c) * 256 + d
        end,
        parse_ipv6 = function(ip)
            if type(ip) ~= "string" then return false end
            local h = ip:match("^%[(.*)%]$") or ip
            if h:find(":", 1, true) and h:match("^[%x:%.]+$") then return { h } end
            return false
        end,
        new = function() return { match = function() return false end } end,
    })

    -- LuaSocket's url.parse, as ai-proxy-multi (3.17+) and the AI drivers call it.
    module("socket.url", {
        parse = function(url, default)
            local parsed = {}
            for k, v in pairs(default or {}) do parsed[k] = v end
            if not url or url == "" then return nil, "invalid url" end
            url = url:gsub("#(.*)$", function(f) parsed.fragment = f; return "" end)
            url = url:gsub("^([%w][%w%+%-%.]*)%:", function(s) parsed.scheme = s; return "" end)
            url = url:gsub("^//([^/]*)", function(n) parsed.authority = n; return "" end)
            url = url:gsub("%?(.*)", function(q) parsed.query = q; return "" end)
            url = url:gsub("%;(.*)", function(p) parsed.params = p; return "" end)
            if url ~= "" then parsed.path = url end
            local authority = parsed.authority
            if not authority then return parsed end
            authority = authority:gsub("^([^@]*)@", function(u) parsed.userinfo = u; return "" end)
            authority = authority:gsub(":([^:%]]*)$", function(p) parsed.port = p; return "" end)
            if authority ~= "" then
                parsed.host = authority:match("^%[(.+)%]$") or authority
            end
            local userinfo = parsed.userinfo
            if not userinfo then return parsed end
            userinfo = userinfo:gsub(":([^:]*)$", function(p) parsed.password = p; return "" end)
            parsed.user = userinfo
            return parsed
        end,
    })

    -- The JSON path forms the health-check manager builds: $.a.b, $.a['b'], $.a["b"], $.a[0].
    module("jsonpath", {
        value = function(obj, path)
            local rest = path:match("^%$(.*)$")
            if not rest then error("jsonpath: expected a path starting with $, got " .. path) end
            local cur = obj
            while rest ~= "" and cur ~= nil do
                local key, tail = rest:match("^%.([%w_%-]+)(.*)$")
                if not key then key, tail = rest:match("^%['([^']*)'%](.*)$") end
                if not key then key, tail = rest:match('^%["([^"]*)"%](.*)$') end
                if not key then
                    local idx
                    idx, tail = rest:match("^%[(%d+)%](.*)$")
                    if not idx then error("jsonpath: unsupported path segment in " .. path) end
                    key = tonumber(idx) + 1
                end
                if type(cur) ~= "table" then return nil end
                cur = cur[key]
                rest = tail
            end
            return cur
        end,
    })

    -- lua-resty-dns-client: answers from the harness's host table (every name -> 127.0.0.x).
    do
        local client = { TYPE_A = 1, TYPE_AAAA = 28, TYPE_CNAME = 5, TYPE_SRV = 33 }
        client.init = function() return true end
        client.resolve = function(name)
            local ips = world.hosts[name] or world.hosts[name:lower()]
            if not ips or #ips == 0 then
                return nil, "dns server error: 3 name error"
            end
            local answers = {}
            for i, ip in ipairs(ips) do
                answers[i] = { address = ip, type = ip:find(":", 1, true) and 28 or 1, class = 1, ttl = 30, name = name }
            end
            return answers
        end
        preload["resty.dns.client"] = function() return client end
        module("resty.dns.utils", {
            parseHosts = function() return {}, {} end,
            getHostsFile = function() return {} end,
        })
        module("resty.core.base", { get_string_buf = function(n) return require("ffi").new("char[?]", n) end,
                                    get_size_ptr = function() return require("ffi").new("size_t[1]") end,
                                    FFI_OK = 0, FFI_ERROR = -1, FFI_DECLINED = -5, FFI_BUSY = -3, FFI_AGAIN = -2,
                                    FFI_NO_REQ_CTX = -100, FFI_BAD_CONTEXT = -101 })
    end

    module("apisix.core.config_local", {
        local_conf = function()
            return world.local_conf
        end,
        clear_cache = function() end,
    })
    module("apisix.core.config_etcd", world.config_side)
    module("apisix.core.etcd", inert("apisix.core.etcd"))
    module("apisix.core.pubsub", inert("apisix.core.pubsub"))
    module("apisix.core.schema", world.schema_side)
    module("apisix.core.request", world.request_side)
    module("apisix.core.response", world.response_side)
    module("apisix.core.ctx", world.ctx_side)
    module("apisix.core.version", { VERSION = opts.apisix_version or "harness" })
    module("apisix.core.id", { get = function() return "harness" end })
    module("apisix.core.os", { getenv = os.getenv, usleep = function(us) sched.sleep(us / 1e6) end })
    module("apisix.core.env", { fetch_by_uri = function() return nil end })
    module("apisix.core.timer", inert("apisix.core.timer"))
    module("apisix.core.io", inert("apisix.core.io"))
    module("apisix.core.ip", inert("apisix.core.ip"))
    module("apisix.core.data_encryption", { encrypt_params = function() end, decrypt_params = function() end })

    -- apisix.core itself: the same fields as the real one, loaded on first use, so a module that
    -- does not load here fails only when the code under test really reaches it.
    do
        local fields = {
            version = "apisix.core.version", log = "apisix.core.log", config = "apisix.core.config_etcd",
            config_util = "apisix.core.config_util", json = "apisix.core.json", table = "apisix.core.table",
            request = "apisix.core.request", response = "apisix.core.response",
            lrucache = "apisix.core.lrucache", schema = "apisix.core.schema", string = "apisix.core.string",
            ctx = "apisix.core.ctx", timer = "apisix.core.timer", id = "apisix.core.id",
            ip = "apisix.core.ip", io = "apisix.core.io", utils = "apisix.core.utils",
            dns_client = "apisix.core.dns.client", etcd = "apisix.core.etcd", tablepool = "tablepool",
            resolver = "apisix.core.resolver", os = "apisix.core.os", pubsub = "apisix.core.pubsub",
            math = "apisix.core.math", event = "apisix.core.event", env = "apisix.core.env",
            data_encryption = "apisix.core.data_encryption",
        }
        local core = setmetatable({}, {
            __index = function(t, k)
                if k == "sleep" then
                    local v = require("apisix.core.utils").sleep
                    rawset(t, k, v)
                    return v
                end
                local name = fields[k]
                if not name then return nil end
                local v = require(name)
                rawset(t, k, v)
                return v
            end,
        })
        preload["apisix.core"] = function() return core end
    end

    -- apisix/plugin.lua is the plugin runner; the code under test calls four of its functions.
    module("apisix.plugin", world.plugin_side)

    module("apisix.plugins.prometheus.exporter", inert("apisix.plugins.prometheus.exporter"))
    module("apisix.plugins.ai-rate-limiting", {
        check_instance_status = function() return true end,
    })
    module("apisix.utils.google-cloud-oauth", { new = function() return { generate_access_token = function() return nil end } end })
    module("apisix.secret", { fetch_secrets = function(conf) return conf end, fetch = function(v) return v end })
    module("apisix.tracer", inert("apisix.tracer"))
    module("apisix.plugins.ai-proxy.semantic", inert("apisix.plugins.ai-proxy.semantic"))
    module("apisix.plugins.ai-proxy.embedding", inert("apisix.plugins.ai-proxy.embedding"))
    module("resty.apisix.upstream", inert("resty.apisix.upstream"))
    module("resty.http", world.http_side)
    -- Loaded by the AI protocol modules of 3.17+ at require time; never reached by the code under test.
    module("resty.jit-uuid", { seed = function() end, generate_v4 = function() return "00000000-0000-4000-8000-000000000000" end })
    module("resty.sha256", { new = function() return { update = function() return true end, final = function() return "" end } end })
    module("rapidjson", {
        null = ipc.null,
        array = function(t) return t end,
        object = function(t) return t end,
        encode = function(v) return require("jsonenc")(v) end,
        decode = function(s) return require("cjson.safe").decode(s) end,
    })
    module("resty.string", { to_hex = function(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end })
end

return _M
