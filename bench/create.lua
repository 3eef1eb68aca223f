-- create.lua - wrk script for bench/api.sh: every request is a POST that
-- creates a new allow policy with a pattern unique across threads, runs and
-- requests ("bench-<run>-t<thread>-<n>@load<n%53>.example.com"), so none is
-- refused as a duplicate and every 201 is one durable write.
--
--   wrk ... -s bench/create.lua http://HOST:PORT/client/v4/accounts/ID/.../allow_policies -- RUN_TAG [SUFFIX]

local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("tid", threads)
end

local counter = 0
local tag = "run"

function init(args)
   if args and args[1] then tag = args[1] end
   if args and args[2] then tag = tag .. "-" .. args[2] end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local n = counter
   local body = string.format(
      '{"is_acceptable_sender":%s,"is_exempt_recipient":false,"is_regex":false,' ..
      '"is_trusted_sender":true,"pattern":"bench-%s-t%d-%d@load%d.example.com",' ..
      '"pattern_type":"EMAIL","verify_sender":%s,"comments":"wrk create %d"}',
      (n % 3 == 0) and "true" or "false", tag, tid, n, n % 53,
      (n % 2 == 0) and "true" or "false", n)
   return wrk.format(nil, nil, nil, body)
end
