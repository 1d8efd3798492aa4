-- Used for every wrk run of bench/run.
--   wrk ... -s bench.lua <url> -- [post <bytes>]
-- With "post N" every request is a POST of N bytes (application/octet-stream).
-- done() prints one line "BENCH_JSON {...}" that bench/run parses: request count,
-- duration, errors and latency percentiles (microseconds) from wrk's own histogram.

function init(args)
   if args[1] == "post" then
      wrk.method = "POST"
      wrk.body = string.rep("p", tonumber(args[2]))
      wrk.headers["Content-Type"] = "application/octet-stream"
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
