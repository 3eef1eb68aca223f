-- mixed.lua - the wrk script of tests/load/load.sh: a mixed workload against
-- one account seeded by tests/load/seed.awk.
--
--   wrk ... -s tests/load/mixed.lua http://HOST:PORT -- ACCOUNT TAG SEEDED
--
-- Every thread issues, per ten requests: 4 GETs of one seeded policy, 3 list
-- pages (filters, orders, pages), 2 writes and 1 evaluation -- 70 % reads,
-- 20 % writes, 10 % evaluations.  Writes cycle create, edit, delete, edit:
-- creates and edits carry patterns unique to the request (TAG, thread,
-- counter); a delete removes a policy this thread created and saw
-- acknowledged, so the data set stays the same size and a long run
-- measures leaks, not growth.  Edits touch seeded EMAIL policies only,
-- deletes never touch them, so no request can meet a 404 or a duplicate:
-- every answer but a 200 or 201 is unexpected, and done() counts them.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local base, eval_path, tag, seeded
local n, writes = 0, 0
local mine, nmine = {}, 0 -- acknowledged creates, for deletes
-- per-thread tallies, read by done() through thread:get
unexpected, ok, first_error = 0, 0, ""
gets, lists, creates, edits, deletes, evals = 0, 0, 0, 0, 0, 0

local orgs = { "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka",
               "tyrell", "cyberdyne" }

function init(args)
   local account = args[1]
   tag = args[2]
   seeded = tonumber(args[3])
   base = "/client/v4/accounts/" .. account .. "/email-security/settings/allow_policies"
   eval_path = "/allowd/v1/accounts/" .. account .. "/evaluate"
   math.randomseed(tid * 7919 + seeded)
   wrk.headers["Content-Type"] = "application/json"
end

-- A seeded id whose policy is an EMAIL, non-regex (seed.awk: i % 10 <= 5, id = i + 1).
local function email_id()
   local i = math.random(0, seeded - 1)
   i = i - i % 10 + math.random(0, 5)
   if i >= seeded then i = i - 10 end
   return i + 1
end

local list_queries = {
   "?page=%d&per_page=50",
   "?page=%d&per_page=20&pattern_type=DOMAIN",
   "?page=%d&per_page=100&order=pattern&direction=desc",
   "?page=%d&per_page=25&is_trusted_sender=true&order=created_at",
   "?page=%d&per_page=10&search=acme",
}

local function get_one()
   gets = gets + 1
   return wrk.format("GET", base .. "/" .. math.random(1, seeded))
end

local function list_page()
   lists = lists + 1
   local q = list_queries[math.random(1, #list_queries)]
   return wrk.format("GET", base .. string.format(q, math.random(1, 1 + math.floor(seeded / 100))))
end

local function create()
   creates = creates + 1
   local body = string.format(
      '{"pattern":"load-%s-t%d-%d@c%d.example","pattern_type":"EMAIL","is_regex":false,' ..
      '"is_trusted_sender":true,"is_acceptable_sender":%s,"is_exempt_recipient":false,' ..
      '"verify_sender":%s,"comments":"load %d"}',
      tag, tid, n, n % 97, (n % 3 == 0) and "true" or "false",
      (n % 2 == 0) and "true" or "false", n)
   return wrk.format("POST", base, nil, body)
end

local function edit()
   edits = edits + 1
   local body = string.format('{"pattern":"edit-%s-t%d-%d@e%d.example","comments":"edit %d"}',
                              tag, tid, n, n % 89, n)
   return wrk.format("PATCH", base .. "/" .. email_id(), nil, body)
end

local function delete()
   local id = mine[nmine]
   mine[nmine] = nil
   nmine = nmine - 1
   deletes = deletes + 1
   return wrk.format("DELETE", base .. "/" .. id)
end

local function evaluate()
   evals = evals + 1
   local i = math.random(0, seeded - 1)
   local o = orgs[math.floor(i / 10) % 10 + 1]
   local body = string.format(
      '{"envelope_from":"user%d@%s%d.example","header_from":"user%d@%s%d.example",' ..
      '"recipients":["user%d@%s%d.example","someone@corp.example"],' ..
      '"client_ip":"23.%d.%d.10","server_name":"mx.d%d.%s.example",' ..
      '"auth":{"spf":{"result":"pass","domain":"%s%d.example"},' ..
      '"dmarc":{"result":"pass","from_domain":"%s%d.example"}}}',
      i, o, i % 97, i, o, i % 97, i + 1, o, (i + 1) % 97, math.floor(i / 256) % 256, i % 256,
      i, o, o, i % 97, o, i % 97)
   return wrk.format("POST", eval_path, nil, body)
end

function request()
   n = n + 1
   local slot = n % 10
   if slot <= 3 then return get_one() end
   if slot <= 6 then return list_page() end
   if slot == 9 then return evaluate() end
   writes = writes + 1
   local w = writes % 4
   if w == 0 or (w == 2 and nmine == 0) then return create() end
   if w == 2 then return delete() end
   return edit()
end

function response(status, headers, body)
   if status == 200 or status == 201 then
      ok = ok + 1
      if status == 201 then
         local id = body:match('"id":(%d+)')
         if id then
            nmine = nmine + 1
            mine[nmine] = id
         end
      end
      return
   end
   unexpected = unexpected + 1
   if first_error == "" then
      first_error = string.format("HTTP %d %s", status, body:sub(1, 400))
   end
end

function done(summary, latency, requests)
   local t = { unexpected = 0, ok = 0, gets = 0, lists = 0, creates = 0, edits = 0,
               deletes = 0, evals = 0 }
   local first = ""
   for _, thread in ipairs(threads) do
      for k, _ in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
      local e = thread:get("first_error")
      if first == "" and e and e ~= "" then first = e end
   end
   local e = summary.errors
   io.write(string.format(
      "LOAD requests=%d answered_ok=%d unexpected=%d connect_errors=%d read_errors=%d " ..
      "write_errors=%d timeouts=%d status_errors=%d duration_us=%d p50_us=%d p90_us=%d " ..
      "p99_us=%d max_us=%d gets=%d lists=%d creates=%d edits=%d deletes=%d evals=%d\n",
      summary.requests, t.ok, t.unexpected, e.connect, e.read, e.write, e.timeout, e.status,
      summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, t.gets, t.lists, t.creates, t.edits, t.deletes,
      t.evals))
   if first ~= "" then
      io.write("LOAD first_unexpected=" .. first:gsub("\n", " ") .. "\n")
   end
end
