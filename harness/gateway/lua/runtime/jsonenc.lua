-- JSON encoding as APISIX's cjson does it with decode_array_with_array_mt: a table is an array
-- when it carries cjson's array_mt or has keys 1..n; any other table, empty ones included, is an
-- object. Debian's cjson lacks the array_mt support, so values crossing to the harness use this.
local cjson = require("cjson")

local type, pairs, tostring, getmetatable = type, pairs, tostring, getmetatable
local concat, format, find, gsub = table.concat, string.format, string.find, string.gsub

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function escape(c)
    return escapes[c] or format("\\u%04x", c:byte())
end

-- Most strings need no escape: finding none is cheaper than a gsub that replaces none.
local function quote(s)
    if not find(s, '[%c"\\]') then return '"' .. s .. '"' end
    return '"' .. gsub(s, '[%c"\\]', escape) .. '"'
end

local encode

local function array_length(t)
    local n = #t
    if n == 0 then return nil end
    local count = 0
    for _ in pairs(t) do
        count = count + 1
        if count > n then return nil end
    end
    return n
end

-- The pieces of the text being built, and how many: a count is cheaper than #out per piece.
local out, n

function encode(v)
    local t = type(v)
    if t == "string" then
        n = n + 1; out[n] = quote(v)
    elseif t == "number" then
        n = n + 1
        if v ~= v or v == math.huge or v == -math.huge then
            out[n] = "null"
        elseif v == math.floor(v) and v > -1e15 and v < 1e15 then
            out[n] = format("%d", v)
        else
            out[n] = format("%.17g", v)
        end
    elseif t == "boolean" then
        n = n + 1; out[n] = tostring(v)
    elseif t == "table" then
        local len = array_length(v)
        local array_mt = cjson.array_mt
        if len or (array_mt and getmetatable(v) == array_mt) then
            n = n + 1; out[n] = "["
            for i = 1, len or 0 do
                if i > 1 then n = n + 1; out[n] = "," end
                encode(v[i])
            end
            n = n + 1; out[n] = "]"
        else
            n = n + 1; out[n] = "{"
            local first = true
            for k, val in pairs(v) do
                local kt = type(k)
                if (kt == "string" or kt == "number") and type(val) ~= "function" and type(val) ~= "userdata" or val == cjson.null then
                    if not first then n = n + 1; out[n] = "," end
                    first = false
                    n = n + 1; out[n] = quote(tostring(k))
                    n = n + 1; out[n] = ":"
                    encode(val)
                end
            end
            n = n + 1; out[n] = "}"
        end
    else
        n = n + 1; out[n] = "null"
    end
end

return function(v)
    out, n = {}, 0
    encode(v)
    local text = concat(out, "", 1, n)
    out = nil
    return text
end
