-- Shared by the benchmark scripts: counts responses by HTTP status in each
-- wrk thread and prints one JSON line that bench/run.py parses.
--
-- Each wrk thread runs its own Lua state, so `statuses` is per thread;
-- done() runs in the main state and sums them through thread:get().

local threads = {}

statuses = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads)
end

function count_status(status)
  statuses[status] = (statuses[status] or 0) + 1
end

local function encode_counts(counts)
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      totals[status] = (totals[status] or 0) + count
    end
  end

  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "statuses": %s,'
      .. ' "socket_errors": {"connect": %d, "read": %d, "write": %d,'
      .. ' "timeout": %d}, "latency_us": {"mean": %.1f, "p50": %d,'
      .. ' "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, encode_counts(totals),
    errors.connect, errors.read, errors.write, errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max
  ))
end
