"""crawlerdetect's crawler patterns, each tried only where its match can begin.

crawlerdetect searches a User-Agent with one alternation of its ~1,460 patterns, so every
position of the agent tries every pattern: 620-820 µs for a browser's agent on the
project's VM, half of a track call's CPU whenever the agent is not in bots.py's cache (the
bench gives each session its own agent; so can a client). Nearly every pattern begins with
a literal character, a class or `^`; read with the regular-expression parser, each is put
in the buckets of the characters it can begin with, and a position tries only the bucket
of its character, in crawlerdetect's order. The first match is the one crawlerdetect's
search finds: leftmost, then the first pattern in its list (tests/test_fastpath_guards.py
compares both on ~17,000 agents). Agents with a character outside ASCII, where case
folding goes beyond lower(), take crawlerdetect's own search. About 90 µs an agent.

Relies on crawlerdetect's data modules and on `re._parser`, the standard library's
private parser: pinned to crawlerdetect 0.4, guarded by the test above.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from crawlerdetect.providers.crawlers import data as CRAWLER_PATTERNS
from crawlerdetect.providers.exclusions import data as EXCLUSION_PATTERNS

# What a pattern's match can begin with: these lower-cased characters, only the start of
# the agent (""), or anything (None).
Starts = set[str] | str | None


def _starts(pattern: str) -> Starts:
    data = sre_parse.parse(pattern, re.IGNORECASE).data
    if data and data[0][0] is sre.BRANCH:  # a|b: the union; `^a|b` may begin anywhere
        branches = [_first(item.data) for item in data[0][1][1]]
        if any(not isinstance(b, set) for b in branches):
            return None
        return set().union(*branches)  # type: ignore[arg-type]
    return _first(data)


def _first(data: Any) -> Starts:
    if not data:
        return None
    op, arg = data[0]
    if op is sre.AT and arg is sre.AT_BEGINNING:
        return ""
    if op is sre.LITERAL:
        return {chr(arg).lower()}
    if op is sre.IN:
        chars: set[str] = set()
        for kind, value in arg:
            if kind is sre.LITERAL:
                chars.add(chr(value).lower())
            elif kind is sre.RANGE and value[1] - value[0] < 256:
                chars.update(chr(c).lower() for c in range(value[0], value[1] + 1))
            else:
                return None
        return chars
    return None


class CrawlerPatterns:
    """Finds what crawlerdetect finds in a User-Agent, as it finds it."""

    def __init__(self, crawlers: Sequence[str] = CRAWLER_PATTERNS,
                 exclusions: Sequence[str] = EXCLUSION_PATTERNS) -> None:
        # crawlerdetect's own two expressions, built the way it builds them.
        self.exclusions = re.compile(f"({'|'.join(exclusions)})", re.IGNORECASE)
        self.everything = re.compile(f"({'|'.join(crawlers)})", re.IGNORECASE)
        starts = [_starts(p) for p in crawlers]
        chars: set[str] = set().union(*(s for s in starts if isinstance(s, set)))

        def among(keep: Callable[[Starts], bool]) -> re.Pattern[str] | None:
            chosen = [p for p, s in zip(crawlers, starts, strict=True) if keep(s)]
            return (re.compile("|".join(f"(?:{p})" for p in chosen), re.IGNORECASE)
                    if chosen else None)

        self.anywhere = among(lambda s: s is None)
        self.at_start_other = among(lambda s: s is None or s == "")
        def begins_with(c: str, at_start: bool) -> Callable[[Starts], bool]:
            return lambda s: s is None or (at_start and s == "") or (isinstance(s, set) and c in s)

        self.at = {c: among(begins_with(c, False)) for c in chars}
        self.at_start = {c: among(begins_with(c, True)) for c in chars}

    def match(self, user_agent: str) -> str | None:
        """The text crawlerdetect's is_crawler() matches in `user_agent` (its getMatches()),
        or None where it finds a browser."""
        agent = self.exclusions.sub("", user_agent.strip())
        if not agent:
            return None
        if not agent.isascii():
            found = self.everything.search(agent)
            return (found.group(1) or None) if found else None
        lower = agent.lower()
        pattern = self.at_start.get(lower[0], self.at_start_other)
        if pattern is not None and (hit := pattern.match(agent)):
            return hit.group(0) or None
        at, anywhere = self.at, self.anywhere
        for pos in range(1, len(agent)):
            pattern = at.get(lower[pos], anywhere)
            if pattern is not None and (hit := pattern.match(agent, pos)):
                return hit.group(0) or None  # an empty first match is no crawler there either
        return None
