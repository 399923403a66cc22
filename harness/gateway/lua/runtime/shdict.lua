-- ngx.shared.DICT with expiry on the virtual clock. One worker keeps the dict here; with several
-- workers every operation goes to the harness, which holds the one copy they share (the
-- `upstream-healthcheck` dict is where lua-resty-healthcheck keeps health state).
local ipc = require("ipc")
local codec = require("codec")
local sched = require("sched")

local _M = {}

local function now_s()
    return sched.now_ms() / 1000
end

local Local = {}
Local.__index = Local

local function live(self, key)
    local e = self.data[key]
    if e and e.exp and e.exp <= now_s() then
        self.data[key] = nil
        return nil, e
    end
    return e
end

function Local:get(key)
    local e = live(self, key)
    if not e then return nil end
    return e.value, e.flags
end

function Local:get_stale(key)
    local e, stale = live(self, key)
    if e then return e.value, e.flags, false end
    if stale then return stale.value, stale.flags, true end
    return nil
end

local function expiry(exptime)
    if exptime and exptime > 0 then return now_s() + exptime end
    return nil
end

function Local:set(key, value, exptime, flags)
    if value == nil then
        self.data[key] = nil
    else
        self.data[key] = { value = value, exp = expiry(exptime), flags = flags }
    end
    return true, nil, false
end
Local.safe_set = Local.set

function Local:add(key, value, exptime, flags)
    if live(self, key) then return false, "exists", false end
    return self:set(key, value, exptime, flags)
end
Local.safe_add = Local.add

function Local:replace(key, value, exptime, flags)
    if not live(self, key) then return false, "not found", false end
    return self:set(key, value, exptime, flags)
end

function Local:delete(key)
    self.data[key] = nil
    return true
end

function Local:incr(key, value, init, init_ttl)
    local e = live(self, key)
    if not e then
        if init == nil then return nil, "not found" end
        e = { value = init, exp = expiry(init_ttl) }
        self.data[key] = e
    elseif type(e.value) ~= "number" then
        return nil, "not a number"
    end
    e.value = e.value + value
    return e.value, nil, false
end

function Local:expire(key, exptime)
    local e = live(self, key)
    if not e then return nil, "not found" end
    e.exp = expiry(exptime)
    return true
end

function Local:ttl(key)
    local e = live(self, key)
    if not e then return nil, "not found" end
    if not e.exp then return 0 end
    return e.exp - now_s()
end

function Local:get_keys(max)
    local keys = {}
    for k in pairs(self.data) do
        if live(self, k) then
            keys[#keys + 1] = k
            if max and max > 0 and #keys >= max then break end
        end
    end
    return keys
end

function Local:flush_all()
    self.data = {}
end

function Local:flush_expired()
    local n = 0
    for k in pairs(self.data) do
        local e, stale = live(self, k)
        if not e and stale then n = n + 1 end
    end
    return n
end

function Local:capacity() return 10 * 1024 * 1024 end
function Local:free_space() return 10 * 1024 * 1024 end

-- Values cross to the harness tagged by type; strings in base64 (lua-resty-healthcheck stores
-- string.buffer-encoded binaries).
local function pack(v)
    local t = type(v)
    if t == "string" then return { s = codec.encode_base64(v) } end
    if t == "number" then return { n = v } end
    if t == "boolean" then return { b = v } end
    return nil
end

local function unpack_value(p)
    if p == nil or p == ipc.null then return nil end
    if p.s then return codec.decode_base64(p.s) end
    if p.n then return p.n end
    if p.b ~= nil then return p.b end
    return nil
end

local Remote = {}
Remote.__index = Remote

local function remote(self, op, key, extra)
    local msg = extra or {}
    msg.call, msg.op, msg.dict, msg.key, msg.now = "shm", op, self.name, key, sched.now_ms()
    return ipc.call(msg)
end

function Remote:get(key)
    local r = remote(self, "get", key)
    return unpack_value(r.value), r.flags
end

function Remote:get_stale(key)
    local r = remote(self, "get_stale", key)
    return unpack_value(r.value), r.flags, r.stale
end

for _, op in ipairs({ "set", "safe_set", "add", "safe_add", "replace" }) do
    Remote[op] = function(self, key, value, exptime, flags)
        local r = remote(self, op, key, { value = pack(value), exptime = exptime, flags = flags })
        return r.ok, r.err, false
    end
end

function Remote:delete(key)
    remote(self, "delete", key)
    return true
end

function Remote:incr(key, value, init, init_ttl)
    local r = remote(self, "incr", key, { value = value, init = init, init_ttl = init_ttl })
    if r.err then return nil, r.err end
    return r.value, nil, false
end

function Remote:expire(key, exptime)
    local r = remote(self, "expire", key, { exptime = exptime })
    if r.err then return nil, r.err end
    return true
end

function Remote:ttl(key)
    local r = remote(self, "ttl", key)
    if r.err then return nil, r.err end
    return r.value
end

function Remote:get_keys(max)
    return remote(self, "get_keys", nil, { max = max }).keys
end

function Remote:flush_all()
    remote(self, "flush_all")
end

function Remote:capacity() return 10 * 1024 * 1024 end
function Remote:free_space() return 10 * 1024 * 1024 end

-- ngx.shared: a dict per name, created on first use.
function _M.new_registry(shared_remotely)
    return setmetatable({}, {
        __index = function(t, name)
            local d
            if shared_remotely then
                d = setmetatable({ name = name }, Remote)
            else
                d = setmetatable({ name = name, data = {} }, Local)
            end
            rawset(t, name, d)
            return d
        end,
    })
end

_M.pack, _M.unpack_value = pack, unpack_value
return _M
