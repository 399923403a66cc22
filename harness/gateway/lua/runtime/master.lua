-- nginx's master process, for the harness: it loads the modules once (main.lua's boot), then
-- forks a worker per run on the harness's request. A forked worker starts from the same state as
-- every other one, so a run pays neither process start nor module loading, and a seed still
-- replays byte for byte.
--
-- Master protocol (its stdin/stdout, after a "ready" line): 8-byte records of two int32, native
-- order. "f" 0 forks a worker, answered "f" <pid> (or "f" -1); "w" <pid> reaps that worker,
-- answered "w" <wait status> (-2: still running, -1: no such child). Between forks the master allocates nothing
-- and, with the JIT off, counts nothing: every worker forks from an identical state. A worker connects to the harness's abstract unix socket twice
-- (its stdin/stdout, then its stderr), introduces itself, and serves commands as a spawned one
-- would. EOF on the master's stdin ends it.
local ffi = require("ffi")

ffi.cdef [[
int harness_fork(void) __asm__("fork");
int harness_getpid(void) __asm__("getpid");
int harness_read(int fd, void *buf, size_t n) __asm__("read");
int harness_write(int fd, const void *buf, size_t n) __asm__("write");
int harness_waitpid(int pid, int *status, int options) __asm__("waitpid");
int harness_socket(int domain, int type, int protocol) __asm__("socket");
int harness_connect(int fd, const void *addr, unsigned int len) __asm__("connect");
int harness_dup2(int from, int to) __asm__("dup2");
int harness_close(int fd) __asm__("close");
]]

local C = ffi.C
local AF_UNIX, SOCK_STREAM = 1, 1
local OP_FORK, OP_WAIT = 102, 119    -- "f", "w"
local WNOHANG, STILL_RUNNING = 1, -2

local _M = {}

-- A stream connection to the abstract socket `name`, or an error.
local function connect(name)
    local fd = C.harness_socket(AF_UNIX, SOCK_STREAM, 0)
    if fd < 0 then error("socket() failed", 0) end
    -- struct sockaddr_un: sa_family_t, then 108 bytes of path; an abstract name starts with a
    -- NUL byte. Node 20's libuv binds the whole zero-padded path, a newer one may bind the name
    -- only: try the exact length, then the padded one.
    local addr = ffi.new("uint8_t[110]")
    ffi.cast("uint16_t *", addr)[0] = AF_UNIX
    ffi.copy(addr + 3, name, #name)
    if C.harness_connect(fd, addr, 3 + #name) == 0 or C.harness_connect(fd, addr, 110) == 0 then return fd end
    error("connect() to the harness failed", 0)
end

-- `worker <pid> <what>\n`, the pid in ten digits (zero-padded), written without making a Lua
-- string of it: an interned string that differs from worker to worker could change how later
-- strings hash, and so pairs() order. Ten digits whatever the pid, because the number of loop
-- iterations moves the JIT's hot counters, and with them when traces are recorded (allocations):
-- with a loop per digit, workers with 4- and 5-digit pids had their tables at other addresses.
local PID_DIGITS = 10
local function introduce(fd, pid, what)
    local line = ffi.new("uint8_t[64]")
    ffi.copy(line, "worker ")
    local n = 7
    local rest = pid
    for i = PID_DIGITS - 1, 0, -1 do
        line[n + i] = 48 + rest % 10
        rest = math.floor(rest / 10)
    end
    n = n + PID_DIGITS
    line[n] = 32
    ffi.copy(line + n + 1, what)
    n = n + 1 + #what
    line[n] = 10
    if C.harness_write(fd, line, n + 1) ~= n + 1 then error("write() to the harness failed", 0) end
end

-- In the new worker: stdin/stdout and stderr become its two connections to the harness.
local function become_worker(name)
    local pid = C.harness_getpid()
    local io_fd = connect(name)
    introduce(io_fd, pid, "io")
    local err_fd = connect(name)
    introduce(err_fd, pid, "stderr")
    C.harness_dup2(io_fd, 0)
    C.harness_dup2(io_fd, 1)
    C.harness_dup2(err_fd, 2)
    C.harness_close(io_fd)
    C.harness_close(err_fd)
    require("ipc").use_line_reader()
end

-- Serve fork requests; returns only in a forked worker, whose stdio then reaches the harness.
-- `jit_on`: whether a worker turns the JIT compiler back on (else it runs on the interpreter).
function _M.serve(name, jit_on)
    local req = ffi.new("int32_t[2]")
    local rep = ffi.new("int32_t[2]")
    local status = ffi.new("int[1]")
    local read, write, fork, waitpid = C.harness_read, C.harness_write, C.harness_fork, C.harness_waitpid
    io.stdout:write("ready\n")
    io.stdout:flush()
    local child = false
    -- The loop must not allocate, nor touch the JIT's state: a trace is an allocation too, and
    -- a loop merely counted as hot moves a hot counter that other code shares (they are hashed
    -- by bytecode address), which changes when a worker's traces are recorded. jit.off(loop)
    -- alone still counts until the loop first turns hot, so the third worker forked from a
    -- master recorded its traces at other times than the first two, and put the same run's
    -- tables at other addresses. With the JIT off, the interpreter counts nothing; a worker
    -- turns it back on (HARNESS_LUA_JIT=on), from the state the boot left, or keeps it off.
    local function loop()
        while true do
            if read(0, req, 8) ~= 8 then os.exit(0) end
            local op = req[0]
            rep[0] = op
            if op == OP_FORK then
                local pid = fork()
                if pid == 0 then
                    child = true
                    return
                end
                rep[1] = pid
            elseif op == OP_WAIT then
                status[0] = 0
                local r = waitpid(req[1], status, WNOHANG)
                if r < 0 then rep[1] = -1 elseif r == 0 then rep[1] = STILL_RUNNING else rep[1] = status[0] end
            else
                rep[1] = -1
            end
            if write(1, rep, 8) ~= 8 then os.exit(0) end
        end
    end
    jit.off()
    loop()
    if child then
        if jit_on then jit.on() end
        become_worker(name)
    end
end

return _M
