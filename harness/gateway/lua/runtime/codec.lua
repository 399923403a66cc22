-- crc32 and base64 in plain Lua (ngx.crc32_short, ngx.encode_base64 are C in ngx_lua).
local bit = require("bit")
local band, bxor, rshift, lshift, bor = bit.band, bit.bxor, bit.rshift, bit.lshift, bit.bor
local byte, char, concat = string.byte, string.char, table.concat

local _M = {}

local crc_table = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if band(c, 1) == 1 then
            c = bxor(rshift(c, 1), 0xEDB88320)
        else
            c = rshift(c, 1)
        end
    end
    crc_table[i] = c
end

function _M.crc32(s)
    local crc = 0xFFFFFFFF
    for i = 1, #s do
        crc = bxor(rshift(crc, 8), crc_table[band(bxor(crc, byte(s, i)), 0xFF)])
    end
    crc = bxor(crc, 0xFFFFFFFF)
    if crc < 0 then crc = crc + 4294967296 end
    return crc
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local enc, dec = {}, {}
for i = 1, 64 do
    enc[i - 1] = alphabet:sub(i, i)
    dec[byte(alphabet, i)] = i - 1
end

function _M.encode_base64(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = byte(s, i, i + 2)
        local n = bor(lshift(a, 16), lshift(b or 0, 8), c or 0)
        out[#out + 1] = enc[band(rshift(n, 18), 63)] .. enc[band(rshift(n, 12), 63)]
            .. (b and enc[band(rshift(n, 6), 63)] or "=") .. (c and enc[band(n, 63)] or "=")
    end
    return concat(out)
end

function _M.decode_base64(s)
    s = s:gsub("[^%w%+/=]", "")
    local out = {}
    for i = 1, #s, 4 do
        local a, b, c, d = byte(s, i, i + 3)
        local n = bor(lshift(dec[a] or 0, 18), lshift(dec[b] or 0, 12),
                      lshift(dec[c] or 0, 6), dec[d] or 0)
        out[#out + 1] = char(band(rshift(n, 16), 255))
        if c and c ~= 61 then out[#out + 1] = char(band(rshift(n, 8), 255)) end
        if d and d ~= 61 then out[#out + 1] = char(band(n, 255)) end
    end
    return concat(out)
end

return _M
