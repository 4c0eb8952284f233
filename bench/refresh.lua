-- Refresh token grant with rotation: each wrk thread owns one token
-- family and always sends the newest refresh token it was given.
--
-- wrk must run with as many threads as connections (-t N -c N), because
-- a Lua state belongs to a thread, not to a connection. With one
-- connection per thread, every request waits for the previous response,
-- so no refresh token is ever sent twice. The initial refresh tokens are
-- read from BENCH_TOKEN_FILE, one line per thread.

dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local refresh_token
local headers = {
  ["Authorization"] = os.getenv("BENCH_AUTHORIZATION"),
  ["Content-Type"] = "application/x-www-form-urlencoded",
}

function init(args)
  local line_number = 0
  for line in io.lines(os.getenv("BENCH_TOKEN_FILE")) do
    line_number = line_number + 1
    if line_number == thread_index then
      refresh_token = line
    end
  end
  if not refresh_token then
    error("BENCH_TOKEN_FILE has no refresh token for thread " .. thread_index)
  end
end

function request()
  local body = "grant_type=refresh_token&refresh_token=" .. refresh_token
  return wrk.format("POST", nil, headers, body)
end

-- A 200 response whose body contains no refresh token is counted under the
-- status 0, because the chain of this thread cannot go on from it.
function response(status, headers, body)
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      refresh_token = token
    else
      status = 0
    end
  end
  count_status(status)
end
