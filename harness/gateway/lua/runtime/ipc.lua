-- JSON lines between this LuaJIT worker and the Node harness.
-- Node sends one command at a time and waits for its `done` line; while a command runs, this
-- side may send notifications (`ev`) and blocking calls (`call`), each answered by one line.
local cjson = require("cjson")

local json = cjson.new()
json.encode_sparse_array(true)
json.decode_max_depth(1000)
json.encode_max_depth(1000)

local stdin, stdout = io.stdin, io.stdout
stdout:setvbuf("full")

local _M = { json = json, null = json.null }

function _M.send(msg)
    stdout:write(json.encode(msg), "\n")
end

function _M.flush()
    stdout:flush()
end

-- Read one line; the harness closing our stdin means "exit now".
function _M.read()
    local line = stdin:read("*l")
    if not line then
        os.exit(0)
    end
    return json.decode(line)
end

-- A blocking call into Node: virtual time stands still until the answer arrives.
function _M.call(msg)
    _M.send(msg)
    stdout:flush()
    return _M.read()
end

return _M
