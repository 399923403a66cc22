-- JSON encoding as APISIX's cjson does it with decode_array_with_array_mt: a table is an array
-- when it carries cjson's array_mt or has keys 1..n; any other table, empty ones included, is an
-- object. Debian's cjson lacks the array_mt support, so values crossing to the harness use this.
local cjson = require("cjson")

local type, pairs, tostring, getmetatable = type, pairs, tostring, getmetatable
local concat, format = table.concat, string.format

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function quote(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
        return escapes[c] or format("\\u%04x", c:byte())
    end) .. '"'
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

function encode(v, out)
    local t = type(v)
    if t == "string" then
        out[#out + 1] = quote(v)
    elseif t == "number" then
        if v ~= v or v == math.huge or v == -math.huge then
            out[#out + 1] = "null"
        elseif v == math.floor(v) and v > -1e15 and v < 1e15 then
            out[#out + 1] = format("%d", v)
        else
            out[#out + 1] = format("%.17g", v)
        end
    elseif t == "boolean" then
        out[#out + 1] = tostring(v)
    elseif t == "table" then
        local n = array_length(v)
        local array_mt = cjson.array_mt
        if n or (array_mt and getmetatable(v) == array_mt) then
            out[#out + 1] = "["
            for i = 1, n or 0 do
                if i > 1 then out[#out + 1] = "," end
                encode(v[i], out)
            end
            out[#out + 1] = "]"
        else
            out[#out + 1] = "{"
            local first = true
            for k, val in pairs(v) do
                local kt = type(k)
                if (kt == "string" or kt == "number") and type(val) ~= "function" and type(val) ~= "userdata" or val == cjson.null then
                    if not first then out[#out + 1] = "," end
                    first = false
                    out[#out + 1] = quote(tostring(k))
                    out[#out + 1] = ":"
                    encode(val, out)
                end
            end
            out[#out + 1] = "}"
        end
    else
        out[#out + 1] = "null"
    end
end

return function(v)
    local out = {}
    encode(v, out)
    return concat(out)
end
