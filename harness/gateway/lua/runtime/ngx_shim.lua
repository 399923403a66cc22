-- The `ngx` global of ngx_lua, as far as the loaded APISIX modules and lua-resty-healthcheck
-- use it, on the harness's virtual clock. Log lines get ngx_lua's prefix from the caller's
-- frame (`[lua] <file>:<line>: <fn>(): `), as ngx_lua's log wrapper does.
local ipc = require("ipc")
local sched = require("sched")
local shdict = require("shdict")
local tcp = require("tcp")
local regex = require("regex")
local codec = require("codec")

local _M = {}

local LEVELS = { [0] = "stderr", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug" }
local RANK = { stderr = 0, emerg = 1, alert = 2, crit = 3, error = 4, warn = 5, notice = 6, info = 7, debug = 8 }

function _M.install(opts)
    local ngx = {}
    local filter_level = RANK[opts.log_level or "warn"] or 5
    _M.filter_level = filter_level

    ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR = 0, 1, 2, 3, 4
    ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG = 5, 6, 7, 8
    ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED = 0, -1, -2, -4, -5
    ngx.HTTP_OK, ngx.HTTP_BAD_REQUEST, ngx.HTTP_NOT_FOUND = 200, 400, 404
    ngx.HTTP_INTERNAL_SERVER_ERROR, ngx.HTTP_BAD_GATEWAY = 500, 502
    ngx.HTTP_SERVICE_UNAVAILABLE, ngx.HTTP_GATEWAY_TIMEOUT = 503, 504
    ngx.HTTP_GET, ngx.HTTP_POST = 2, 8
    ngx.null = ipc.null

    ngx.now = function() return math.floor(sched.now_ms()) / 1000 end
    ngx.time = function() return math.floor(sched.now_ms() / 1000) end
    ngx.update_time = function() end
    ngx.today = function() return os.date("!%Y-%m-%d", ngx.time()) end
    ngx.localtime = function() return os.date("!%Y-%m-%d %H:%M:%S", ngx.time()) end
    ngx.utctime = ngx.localtime
    ngx.get_phase = function() return sched.phase() end

    local function context_of(phase)
        local req = _M.current_request and _M.current_request()
        if req then
            return ('client: 127.0.0.1, server: , request: "%s %s HTTP/1.1", host: "%s"')
                :format(req.method, req.uri, req.host or "127.0.0.1")
        end
        if phase == "init_worker" then return "context: init_worker_by_lua*" end
        return "context: ngx.timer"
    end

    local function arg_text(v, i)
        local t = type(v)
        if t == "string" then return v end
        if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
        if v == ngx.null then return "null" end
        local mt = getmetatable(v)
        if t == "table" and mt and mt.__tostring then return tostring(v) end
        error(("bad argument #%d to 'log' (expected table to have __tostring metamethod)"):format(i), 3)
    end

    -- level 2 is the function that called ngx.log (a tail call in core.log leaves no frame).
    ngx.log = function(level, ...)
        if level > filter_level then return end
        local n = select("#", ...)
        local parts = {}
        for i = 1, n do
            parts[i] = arg_text((select(i, ...)), i + 1)
        end
        local info = debug.getinfo(2, "Snl")
        local file, line, fn = "?", 0, nil
        if info then
            file = (info.short_src or "?"):match("([^/]*)$")
            line = info.currentline or 0
            if info.name and info.name ~= "" then fn = info.name end
        end
        local msg = table.concat(parts)
        require("trace").logged(msg)
        ipc.send({ ev = "log", t = sched.now_ms(), level = LEVELS[level], file = file, line = line, fn = fn,
                   msg = msg, ctx = context_of(sched.phase()) })
    end

    ngx.print = function(...) _M.response_write(table.concat({ ... })) end
    ngx.say = function(...) _M.response_write(table.concat({ ... }) .. "\n") end
    ngx.exit = function(code) _M.response_exit(code) end
    ngx.flush = function() end

    ngx.sleep = sched.sleep

    ngx.timer = {
        at = function(delay, fn, ...)
            return sched.timer_at(delay, fn, ...)
        end,
        every = function(interval, fn, ...)
            local info = debug.getinfo(2, "S")
            local source = info and info.source or ""
            -- the health-check manager's timers: when they next run is what a `tick` step asks
            local manager = source:find("healthcheck_manager%.lua$") ~= nil
            fn = require("trace").wrap_every(fn, source)
            local args = { n = select("#", ...), ... }
            local function run(premature)
                -- ngx_lua arms the next run before this one's callback runs
                if manager then _M.manager_next_tick = sched.due_after(interval) end
                sched.timer_at(interval, run)
                return fn(premature, unpack(args, 1, args.n))
            end
            if manager then _M.manager_next_tick = sched.due_after(interval) end
            return sched.timer_at(interval, run)
        end,
        running_count = function() return 0 end,
        pending_count = function() return sched.pending() end,
    }

    ngx.thread = {
        spawn = function(fn, ...)
            return sched.spawn(sched.phase(), coroutine.running(), fn, ...)
        end,
        wait = function(rec)
            return sched.wait(rec)
        end,
        kill = function() return true end,
    }

    ngx.worker = {
        id = function() return opts.worker_id end,
        pid = function() return opts.pid end,
        count = function() return opts.worker_count end,
        exiting = function() return false end,
    }

    ngx.config = {
        subsystem = "http",
        ngx_lua_version = 10025,
        nginx_version = 1025003,
        debug = false,
        prefix = function() return "/usr/local/apisix/" end,
        is_console = false,
    }

    ngx.shared = shdict.new_registry(opts.worker_count > 1)
    ngx.socket = { tcp = tcp.tcp, stream = tcp.tcp }
    ngx.re = regex

    ngx.crc32_short = codec.crc32
    ngx.crc32_long = codec.crc32
    ngx.encode_base64 = codec.encode_base64
    ngx.decode_base64 = codec.decode_base64
    ngx.escape_uri = function(s)
        return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
    end
    ngx.unescape_uri = function(s)
        return (tostring(s):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    end
    ngx.encode_args = function(t)
        local out = {}
        for k, v in pairs(t) do
            out[#out + 1] = ngx.escape_uri(k) .. "=" .. ngx.escape_uri(tostring(v))
        end
        table.sort(out)
        return table.concat(out, "&")
    end
    ngx.decode_args = function(s)
        local out = {}
        for pair in tostring(s):gmatch("[^&]+") do
            local k, v = pair:match("^([^=]*)=?(.*)$")
            out[ngx.unescape_uri(k)] = ngx.unescape_uri(v)
        end
        return out
    end

    -- Request state; set by the harness for each data-plane request.
    ngx.ctx = {}
    ngx.var = setmetatable({}, { __index = function(_, k) return _M.request_var and _M.request_var(k) end })
    ngx.header = {}
    ngx.status = 200
    ngx.req = {
        read_body = function() end,
        get_body_data = function() return _M.request_body and _M.request_body() end,
        get_body_file = function() return nil end,
        get_headers = function() return _M.request_headers and _M.request_headers() or {} end,
        get_method = function() local r = _M.current_request and _M.current_request(); return r and r.method or "GET" end,
        get_uri_args = function() return {} end,
        set_header = function() end,
        clear_header = function() end,
        set_body_data = function() end,
    }
    ngx.resp = { get_headers = function() return {} end }

    _G.ngx = ngx
    return ngx
end

return _M
