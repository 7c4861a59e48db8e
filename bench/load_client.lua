-- The load client of bench/serve_http.py, for wrk (https://github.com/wg/wrk, Debian: wrk):
--
--   wrk -t1 -cCONCURRENCY -dSECONDSs -s bench/load_client.lua URL/predict -- CASES
--
-- CASES is a text file of line pairs: a POST /predict body, then the body a serial call
-- answered it with (each answer carries its text, so no two cases share an answer). Requests
-- cycle through the cases; an answer that is none of the serial answers counts as differing.
-- wrk runs for SECONDS (it has no count limit: its main thread sleeps the whole -d); the
-- bench runs one thread (-t1), which keeps all CONCURRENCY connections busy.
-- Prints one JSON line: {"sent", "seconds", "rate", "p50", "p99", "errors", "differing"}
-- (latencies in ms). wrk is C with a LuaJIT hook per request: it takes a small part of the
-- CPU the server shares with it on one machine.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  requests, answers = {}, {}
  while true do
    local body = file:read("*l")
    if body == nil then break end
    answers[assert(file:read("*l"))] = true
    table.insert(requests, wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body))
  end
  file:close()
  sent, differing, bad = 0, 0, 0
end

function request()
  sent = sent + 1
  return requests[(sent - 1) % #requests + 1]
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  elseif not answers[body] then
    differing = differing + 1
  end
end

function done(summary, latency, requests)
  local differing, bad = 0, 0
  for _, thread in ipairs(threads) do
    differing = differing + thread:get("differing")
    bad = bad + thread:get("bad")
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format('{"sent": %d, "seconds": %.3f, "rate": %.1f, "p50": %.3f, "p99": %.3f, '
                         .. '"errors": %d, "differing": %d}\n', summary.requests, seconds,
                         summary.requests / seconds, latency:percentile(50) / 1000,
                         latency:percentile(99) / 1000,
                         e.connect + e.read + e.write + e.timeout + bad, differing))
end
