-- wrk: one canonical event per request, each with its own order id (so every request is a new
-- event that Surety stores, plans and delivers), bearer token from SURETY_BENCH_TOKEN.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid
end

local token = os.getenv("SURETY_BENCH_TOKEN") or "bench-ingest-token"
local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 600)
-- BENCH_RUN tells apart wrk instances started in the same second (scripts/bench_http.sh).
local run = os.time() .. (os.getenv("BENCH_RUN") or "")

request = function()
  counter = counter + 1
  local body = string.format(
    '{"kind":"order_paid","occurred_at":"%s","subject":{"type":"order","id":"b%d-%d-%d"},' ..
    '"value":59.9,"currency":"EUR","identity":{"client_id":"555.%d","email":"buyer%d@example.com"},' ..
    '"consent":{"analytics":"granted","ad_user_data":"granted"}}',
    stamp, run, thread_id, counter, counter, counter)
  return wrk.format("POST", "/v1/events",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

done = function(summary, latency, requests)
  local ok = summary.requests - summary.errors.status - summary.errors.connect - summary.errors.read
    - summary.errors.write - summary.errors.timeout
  io.write(string.format("RESULT requests=%d ok=%d non2xx=%d errors=%d seconds=%.1f rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, ok, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
