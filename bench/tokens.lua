-- GET the URL with a bearer token taken in turn from a pool: one token
-- per line in the file named by BENCH_TOKEN_FILE. Each thread starts at a
-- different place in the pool.

dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local pool = {}
local position = 0

function init(args)
  for line in io.lines(os.getenv("BENCH_TOKEN_FILE")) do
    if line ~= "" then
      table.insert(pool, line)
    end
  end
  position = (thread_index * 7919) % #pool
end

function request()
  position = position % #pool + 1
  local headers = {Authorization = "Bearer " .. pool[position]}
  return wrk.format(nil, nil, headers, nil)
end

function response(status, headers, body)
  count_status(status)
end
