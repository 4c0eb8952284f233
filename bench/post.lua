-- POST a fixed form body (BENCH_BODY) with a fixed Authorization header
-- (BENCH_AUTHORIZATION), for the password grant and for introspection.

dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")

function response(status, headers, body)
  count_status(status)
end
