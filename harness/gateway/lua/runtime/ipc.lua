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

-- spin-read.c's reader, loaded at boot (before any fork) and used once this process is a worker.
local reader, reader_len, spin_us, ffi_string
local use_reader = false

-- Load the line reader at `path`; `poll_us`: how long a read polls before it sleeps.
function _M.load_line_reader(path, poll_us)
    local ffi = require("ffi")
    ffi.cdef("const char *harness_read_line(int fd, long spin_us, size_t *len);")
    reader = ffi.load(path)
    reader_len = ffi.new("size_t[1]")
    spin_us = poll_us
    ffi_string = ffi.string
end

-- From now on read through the loaded reader (a forked worker: its stdin is a fresh socket, and
-- nothing of it sits in stdio's buffer).
function _M.use_line_reader()
    use_reader = reader ~= nil
end

local function read_line()
    if not use_reader then return stdin:read("*l") end
    local p = reader.harness_read_line(0, spin_us, reader_len)
    if p == nil then return nil end
    return ffi_string(p, reader_len[0])
end

-- Read one line; the harness closing our stdin means "exit now".
function _M.read()
    local line = read_line()
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
