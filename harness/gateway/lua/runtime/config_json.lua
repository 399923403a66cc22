-- JSON texts of config values as Lua tables, as APISIX's core.json.decode makes them with
-- decode_array_with_array_mt: every array carries array_mt (so `[]` encodes back as `[]`),
-- objects carry none. Debian's cjson cannot mark arrays; dkjson can, but it is Lua, several
-- times slower than cjson with the JIT off. So cjson decodes every text without an empty array
-- (the only place where the two differ), and dkjson the rest and whatever cjson refuses.
local cjson = require("cjson")

local find, pairs, pcall, setmetatable, type = string.find, pairs, pcall, setmetatable, type

local fast = cjson.new()
fast.decode_max_depth(1000)
-- NaN, Infinity and hex numbers: refused by dkjson, so cjson must not take them either.
fast.decode_invalid_numbers(false)

local dkjson

local _M = {}

-- A JSON object's keys are strings: a decoded table with [1] came from an array.
local function mark_arrays(v, mt)
    if v[1] ~= nil then setmetatable(v, mt) end
    for _, x in pairs(v) do
        if type(x) == "table" then mark_arrays(x, mt) end
    end
end

-- The value of `text`, or nil and dkjson's error; null is `null` (cjson's lightuserdata).
function _M.decode(text, array_mt, null)
    if not find(text, "%[%s*%]") then
        local ok, v = pcall(fast.decode, text)
        if ok then
            if type(v) == "table" then mark_arrays(v, array_mt) end
            return v
        end
    end
    dkjson = dkjson or require("dkjson")
    local v, _, err = dkjson.decode(text, 1, null, nil, array_mt)
    if err then return nil, err end
    return v
end

return _M
