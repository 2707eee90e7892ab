"""Every place the service goes around its frameworks' public API, and why each pays.

Each one leans on internals of litestar, prometheus-client, uvicorn, crawlerdetect, asyncio
or re. They are pinned in pyproject.toml to the minor releases tests/test_fastpath_guards.py
passed on, and that test fails naming the bypass when an upgrade moves what it relies on:
re-measure then. Measurements are in-process track-click, alternating A/B (docs/performance.md).

- strict_body.py — `StrictRequest`, the app's request class: decodes the body once, strictly,
  into the handler's `data` type (litestar converts laxly: "5" became 5), and reads the ASGI
  body messages itself instead of an async generator and a Headers of every header:
  52.0/57.6/56.1 -> 46.6/47.7/51.1 µs (about 5 µs).
- answers.py — `TrackAnswer`: a tracking call's plain answer is encoded by msgspec and sent as
  two ASGI messages, skipping litestar's header/cookie merge, encoder and serializer lookup:
  59.8/62.6/59.7 -> 54.5/52.1/53.1 µs (5-8 µs).
- asgi.py — `HttpMetricsMiddleware` over `Litestar.asgi_handler`: request metrics and security
  headers in one send wrapper around every answer; a litestar middleware adds a second
  exception handler per route and a before_send hook a second wrapper (with prometheus.py and
  the one-pass header reads: 4-10 µs less a track-click).
- prometheus.py — `UpdateBuffer`: metric updates summed in dicts, written through
  prometheus-client's private child fields once per flush; each multiprocess update locks,
  checks the pid and writes a mmapped file, 2-3 µs, six a track-click (about 15 µs).
  `asyncio._get_running_loop`: the C-level lookup returns None without a loop, no exception.
- protocol.py — `BoundedHttpToolsProtocol`, a uvicorn httptools protocol subclass: bounds
  header bytes (431) and request read time (408/close); not a speed bypass, a safety one
  (one 32 MB header was read and answered), keeping httptools' C parser for the hot path;
  a pipelined request over the header limit gets its 431 through uvicorn's own cycle, in turn.
- crawlers.py — `CrawlerPatterns`: crawlerdetect's patterns, each tried only at the positions
  of a User-Agent where its match can begin (read with `re._parser`), finding what
  crawlerdetect finds: 620-820 -> about 90 µs for an agent not in bots.py's cache, which
  a bench session or a client sending a new agent each call always is.
"""
