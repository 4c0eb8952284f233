-- GET the URL given to wrk, with an optional bearer token from the
-- BENCH_TOKEN environment variable. The request never changes, so wrk
-- builds it once.

dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function response(status, headers, body)
  count_status(status)
end
