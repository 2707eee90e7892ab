"""Known bots and crawlers by User-Agent (crawlerdetect's list), so their hits are not counted.

Tracking calls come from the site's own JavaScript, so the bots that reach them are the
ones that render pages: search engines' renderers, link previewers, headless browsers.
Mode `crawlers` (the default) ignores every User-Agent crawlerdetect knows except plain
HTTP client libraries and command-line tools (curl, python-requests, ...): those never run
the site's scripts, so a request from one is a deliberate call (an integration, a test, an
operator), not a crawler walking pages. Mode `all` ignores those too; `off` keeps everything.
"""

from __future__ import annotations

import re
from functools import lru_cache

from service.fastpath.crawlers import CrawlerPatterns

MODES = ("crawlers", "all", "off")
_MAX_AGENT_LENGTH = 512  # longer agents are cut before matching (and before caching)

# crawlerdetect matches that name an HTTP library or tool rather than a crawler.
_HTTP_CLIENTS = re.compile(
    r"^(curl|wget|python-requests|python-httpx|python-urllib|aiohttp|httpie|go-http-client"
    r"|okhttp|axios|node-fetch|undici|java|apache-httpclient|libwww-perl|guzzlehttp"
    r"|postmanruntime|insomnia|ruby|faraday|php|dart|powershell|rest-client|http\.rb)",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def _patterns() -> CrawlerPatterns:
    return CrawlerPatterns()  # about 0.4 s: built once, before traffic (service/app.py)


@lru_cache(maxsize=4096)
def _crawler_match(user_agent: str) -> str | None:
    """What crawlerdetect matches in `user_agent`, or None for a browser (its patterns, tried
    only where each can begin: service/fastpath/crawlers.py)."""
    return _patterns().match(user_agent)


def is_bot(user_agent: str | None, mode: str) -> bool:
    """True when a request with this User-Agent should be ignored under `mode`."""
    if mode == "off" or not user_agent:
        return False
    match = _crawler_match(user_agent[:_MAX_AGENT_LENGTH])
    if match is None:
        return False
    return mode == "all" or not _HTTP_CLIENTS.match(match)
