-- ngx.socket.tcp for the checker's probes. Each connect/exchange is a blocking call into the
-- harness, which answers from its mock backends on loopback; a timeout costs virtual time
-- (ngx.sleep of the socket's timeout), never real time.
local ipc = require("ipc")
local sched = require("sched")
local trace = require("trace")

local _M = {}

local Sock = {}
Sock.__index = Sock

function _M.tcp()
    return setmetatable({ timeouts = { 60000, 60000, 60000 }, sent = {} }, Sock)
end

function Sock:settimeout(ms)
    self.timeouts = { ms, ms, ms }
end

function Sock:settimeouts(connect, send, read)
    self.timeouts = { connect, send, read }
end

local function wait_then(self, ms, err)
    sched.sleep((ms or 0) / 1000)
    return nil, err
end

-- Addresses whose connect outcome the harness knows ahead ("connected" or "refused"), sent
-- with every command: a connect there tells the harness and goes on without waiting for it.
local known_connects = {}

function _M.set_known_connects(t)
    known_connects = t
end

function Sock:connect(host, port)
    local known = known_connects[host]
    if known then
        ipc.send({ ev = "connect", ip = host, port = port, timeout = self.timeouts[1], at_ms = sched.now_ms() })
        if known ~= "connected" then
            trace.probe(tostring(host) .. ":" .. tostring(port), "refused", false)
            return nil, "connection refused"
        end
        -- Sent now, so that the harness connects while this side writes the request.
        ipc.flush()
        self.ip, self.port, self.connected = host, port, true
        return 1
    end
    local r = ipc.call({ call = "tcp", op = "connect", ip = host, port = port, timeout = self.timeouts[1],
                       at_ms = sched.now_ms() })
    local target = tostring(host) .. ":" .. tostring(port)
    if r.err == "timeout" then
        trace.probe(target, "timeout", false)
        return wait_then(self, self.timeouts[1], "timeout")
    end
    if r.err then
        trace.probe(target, "refused", false)
        return nil, r.err
    end
    self.ip, self.port, self.connected = host, port, true
    return 1
end

function Sock:sslhandshake()
    return nil, "the harness has no TLS: use http checks against the mock backends"
end

function Sock:send(data)
    if not self.connected then return nil, "closed" end
    if type(data) == "table" then data = table.concat(data) end
    self.sent[#self.sent + 1] = data
    return #data
end

-- The first read sends what was written and takes the whole answer; later reads consume it.
local function fill(self)
    if self.buffer then return true end
    local r = ipc.call({ call = "tcp", op = "exchange", ip = self.ip, port = self.port,
                         data = table.concat(self.sent), timeout = self.timeouts[3], at_ms = sched.now_ms() })
    self.sent = {}
    local target = tostring(self.ip) .. ":" .. tostring(self.port)
    if r.err == "timeout" then
        trace.probe(target, "timeout", false)
        local _, err = wait_then(self, self.timeouts[3], "timeout")
        return nil, err
    end
    if r.err then
        trace.probe(target, "refused", false)
        return nil, r.err
    end
    local status = tonumber((r.data or ""):match("^HTTP/%d%.%d (%d+)"))
    trace.probe(target, tostring(status or "?"), status ~= nil and status < 400)
    if r.delay and r.delay > 0 then sched.sleep(r.delay / 1000) end
    self.buffer = r.data or ""
    return true
end

function Sock:receive(pattern)
    if not self.connected then return nil, "closed" end
    local ok, err = fill(self)
    if not ok then return nil, err end
    local buf = self.buffer
    if buf == "" then return nil, "closed" end
    pattern = pattern or "*l"
    if pattern == "*l" then
        local i = buf:find("\n", 1, true)
        local line
        if i then
            line, self.buffer = buf:sub(1, i - 1), buf:sub(i + 1)
        else
            line, self.buffer = buf, ""
        end
        return (line:gsub("\r$", ""))
    elseif pattern == "*a" then
        self.buffer = ""
        return buf
    elseif type(pattern) == "number" then
        local chunk = buf:sub(1, pattern)
        self.buffer = buf:sub(pattern + 1)
        return chunk
    end
    return nil, "bad pattern"
end

function Sock:close()
    self.connected = false
    return 1
end

function Sock:setkeepalive()
    self.connected = false
    return 1
end

function Sock:getreusedtimes()
    return 0
end

function Sock:setoption()
    return true
end

return _M
