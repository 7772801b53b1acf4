-- wrk script: POST the signed callback on every request, count every non-2xx answer, and print
-- one machine-readable line at the end.
-- Usage: wrk -t1 -c32 -d5s --latency -s bench/load.lua http://127.0.0.1:PORT/ -- BODY SIGNATURE RUN_ID

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   if #args ~= 3 then
      error("usage: wrk ... -s load.lua URL -- BODY SIGNATURE RUN_ID")
   end
   wrk.method = "POST"
   wrk.body = args[1]
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   wrk.headers["X-Twilio-Signature"] = args[2]
   -- a new idempotency token per request, as Twilio sends with each webhook (it is not signed)
   token_prefix = args[3] .. "-"
   sent = 0
   non2xx = 0
   first_non2xx = 0
end

function request()
   sent = sent + 1
   wrk.headers["I-Twilio-Idempotency-Token"] = token_prefix .. sent
   return wrk.format()
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_non2xx == 0 then
         first_non2xx = status
      end
   end
end

function done(summary, latency, requests)
   local non2xx_total, first_status = 0, 0
   for _, thread in ipairs(threads) do
      non2xx_total = non2xx_total + thread:get("non2xx")
      if first_status == 0 then
         first_status = thread:get("first_non2xx")
      end
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "first_non2xx_status": %d, '
         .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
         .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.requests, summary.duration, non2xx_total, first_status,
      errors.connect, errors.read, errors.write, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
