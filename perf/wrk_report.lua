-- wrk report script: prints one JSON line with the percentiles perf/http_load.py reads.
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  local parts = {}
  for _, p in ipairs({0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100}) do
    parts[#parts + 1] = string.format('"%s":%d', tostring(p), latency:percentile(p))
  end
  io.write(string.format(
    'PERFJSON {"requests":%d,"errors":%d,"seconds":%f,"max":%d,"percentiles":{%s}}\n',
    summary.requests, errors, summary.duration / 1e6, latency.max, table.concat(parts, ',')))
end
