-- wrk script: POST a fixed body; print one machine-readable summary line.
-- Same interface as ../shared/bench/wrk-post.lua (BENCH_BODY, BENCH_CT, BENCH_AUTH), plus
-- BENCH_DELAY_MS: a pause before each request on each connection, to hold a lower rate
-- (64 connections at 10 ms each ≈ 6,400 req/s) for latency-at-load measurements.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or ""
wrk.headers["Content-Type"] = os.getenv("BENCH_CT") or "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause and pause > 0 then
  function delay()
    return pause
  end
end

-- BENCH_TOKENS_FILE: one token per line; each request authorizes the next one (the threads
-- start half the file apart), so no token is asked about twice in a row.
local tokens_file = os.getenv("BENCH_TOKENS_FILE")
if tokens_file and tokens_file ~= "" then
  local threads = 0
  function setup(thread)
    thread:set("thread_index", threads)
    threads = threads + 1
  end
  local tokens, idx = {}, 0
  function init(args)
    for line in io.lines(tokens_file) do
      tokens[#tokens + 1] = line
    end
    idx = (thread_index or 0) * math.floor(#tokens / 2)
  end
  function request()
    idx = idx % #tokens + 1
    return wrk.format(nil, nil, nil, '{"token":"' .. tokens[idx] .. '"}')
  end
end

-- BENCH_REQUESTS_FILE: one request per line, `PATH<TAB>BODY[<TAB>Header: value]` (from
-- `vouch-bench requests`). With BENCH_THREADS threads, thread k sends lines k, k+T, k+2T, ...:
-- no line is sent twice in a run unless a thread runs out and wraps around (size the file for
-- the run: events and destinations are meant to be distinct).
local requests_file = os.getenv("BENCH_REQUESTS_FILE")
if requests_file and requests_file ~= "" then
  local threads = 0
  function setup(thread)
    thread:set("thread_index", threads)
    threads = threads + 1
  end
  local reqs, idx = {}, 0
  function init(args)
    local stride = tonumber(os.getenv("BENCH_THREADS") or "1")
    local me, n = thread_index or 0, 0
    for line in io.lines(requests_file) do
      if n % stride == me then
        local path, body, header = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
        local headers = {}
        for k, v in pairs(wrk.headers) do headers[k] = v end
        if header and header ~= "" then
          local name, value = header:match("^([^:]+):%s*(.*)$")
          headers[name] = value
        end
        reqs[#reqs + 1] = wrk.format(nil, path, headers, body)
      end
      n = n + 1
    end
  end
  function request()
    idx = idx % #reqs + 1
    return reqs[idx]
  end
end

local non2xx = 0
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  -- WRKSTAT requests duration_us p50_us p99_us connect read write status timeout
  io.write(string.format("WRKSTAT %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
