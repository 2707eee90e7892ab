-- wrk script for the tracking endpoints, for measuring them with a second load generator.
--
--   SCENARIO=track-click wrk -t1 -c64 -d30s -s bench/wrk/track.lua http://127.0.0.1:8000
--
-- SCENARIO: track-click (default), track-view or track-clicks (BATCH clicks a request, 50).
-- PROJECTS: project ids are drawn from 1..PROJECTS (10000, as `make bench-serve` seeds).
-- Requests look like bench/loadgen.py's: a browser User-Agent, X-Session-Key from 100,000
-- sessions, random projects, sources and positions. Views of a random (project, session)
-- pair are almost never repeats, so nearly every view is stored (the bench's own load
-- generator repeats one in ten to exercise dedup).
--
-- wrk is closed-loop: each connection sends its next request when the last one answered,
-- so its latencies leave out queueing (coordinated omission) and its rate is the maximum
-- for -c connections, not a sustained open-loop rate. At the end it prints one JSON line.

local scenario = os.getenv("SCENARIO") or "track-click"
local projects = tonumber(os.getenv("PROJECTS") or "10000")
local batch = tonumber(os.getenv("BATCH") or "50")
local sessions = 100000

local click_sources = {"explore_for_you", "explore_trending", "explore_new", "explore_news",
                       "search", "profile", "related"}
local view_sources = {"explore", "profile", "direct", "search", "embed"}

local user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   .. "Chrome/126.0.0.0 Safari/537.36"
local headers = {["Content-Type"] = "application/json"}

if scenario ~= "track-click" and scenario ~= "track-view" and scenario ~= "track-clicks" then
  error("SCENARIO must be track-click, track-view or track-clicks, not " .. scenario)
end

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_number or 0))
end

local function click()
  return string.format('{"project_id":%d,"source":"%s","position":%d}',
                       math.random(projects), click_sources[math.random(#click_sources)],
                       math.random(0, 49))
end

function request()
  local session = math.random(sessions)
  -- A browser of its own per session, as in bench/loadgen.py: all of wrk's load comes from one
  -- address, and the per-fingerprint view cap (address + User-Agent) would cap most views.
  headers["User-Agent"] = user_agent .. " s/" .. session
  headers["X-Session-Key"] = "wrk-session-" .. session
  if scenario == "track-click" then
    return wrk.format("POST", "/api/v1/projects/track-click/", headers, click())
  elseif scenario == "track-clicks" then
    local items = {}
    for i = 1, batch do items[i] = click() end
    return wrk.format("POST", "/api/v1/projects/track-clicks/", headers,
                      '{"clicks":[' .. table.concat(items, ",") .. ']}')
  else
    local body = string.format('{"source":"%s"}', view_sources[math.random(#view_sources)])
    return wrk.format("POST", "/api/v1/projects/" .. math.random(projects) .. "/track-view/",
                      headers, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"scenario":"%s","requests":%d,"seconds":%.3f,"rate":%.1f,"events_per_request":%d,'
    .. '"non_2xx_3xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
    .. '"timeouts":%d,"latency_ms":{"p50":%.2f,"p90":%.2f,"p99":%.2f,"max":%.2f}}\n',
    scenario, summary.requests, seconds, summary.requests / seconds,
    scenario == "track-clicks" and batch or 1,
    e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3))
end
