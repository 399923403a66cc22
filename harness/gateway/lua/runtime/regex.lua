-- ngx.re without PCRE: the few regular expressions the loaded modules use, each rewritten as a
-- Lua pattern (with the capture the caller asks for). Any other expression is a clear error, so a
-- newly used one shows up as "add it here" instead of silently matching wrong.
local _M = {}

local PATTERNS = {
    -- lua-resty-healthcheck: the status line of a probe answer (case-insensitive, capture 1)
    ["^HTTP/\\d+\\.\\d+\\s+(\\d+)"] = {
        lua = "^[Hh][Tt][Tt][Pp]/%d+%.%d+%s+(%d+)",
        pos = "^[Hh][Tt][Tt][Pp]/%d+%.%d+%s+()%d+()",
    },
    -- lua-resty-healthcheck: accepted lua-resty-events versions
    ["^0\\.1\\.\\d+$"] = { lua = "^0%.1%.%d+$" },
    -- apisix/core/string.lua: compress_script
    ["^\\s+"] = { lua = "^%s+" },
    [",\\s+"] = { lua = ",%s+" },
}

local function entry(regex)
    local p = PATTERNS[regex]
    if not p then
        error("ngx.re: the harness shim does not know the regular expression " .. regex
              .. " (add it to harness/gateway/lua/runtime/regex.lua)", 3)
    end
    return p
end

local function lookup(regex)
    return entry(regex).lua
end

-- ngx.re.find(subject, regex, opts, ctx, nth): byte offsets of the whole match or of capture 1
function _M.find(subject, regex, _, _, nth)
    local p = entry(regex)
    if nth and nth > 0 then
        if not p.pos then
            error("ngx.re.find: no capture positions known for " .. regex, 2)
        end
        local s, e = subject:match(p.pos)
        if not s then return nil end
        return s, e - 1
    end
    local s, e = subject:find(p.lua)
    return s, e
end

function _M.match(subject, regex)
    local r = { subject:find(lookup(regex)) }
    if not r[1] then return nil end
    local m = { [0] = subject:sub(r[1], r[2]) }
    for i = 3, #r do m[i - 2] = r[i] end
    return m
end

function _M.gsub(subject, regex, replace)
    local pat = lookup(regex)
    local out, n = subject:gsub(pat, replace)
    return out, n
end

function _M.sub(subject, regex, replace)
    local pat = lookup(regex)
    local out, n = subject:gsub(pat, replace, 1)
    return out, n
end

function _M.gmatch(subject, regex)
    return subject:gmatch(lookup(regex))
end

-- ngx.re.split with a literal one-character separator (all APISIX's core uses).
function _M.split(subject, sep)
    if #sep ~= 1 or sep:match("[%^%$%(%)%%%.%[%]%*%+%-%?|\\{}]") then
        error("ngx.re.split: the harness shim only splits on a literal character, got " .. sep, 2)
    end
    local out = {}
    local start = 1
    while true do
        local i = subject:find(sep, start, true)
        if not i then
            out[#out + 1] = subject:sub(start)
            break
        end
        out[#out + 1] = subject:sub(start, i - 1)
        start = i + 1
    end
    return out
end

return _M
