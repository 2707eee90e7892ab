"""Confidence intervals for proportions: Wilson score, and Newcombe's for a difference.

Wilson (1927) stays inside [0, 1] and behaves at 0 or n successes and small n, where the
normal ("Wald") interval does not. Newcombe (1998, method 10, "hybrid score") builds the
interval of a difference of two independent proportions from their Wilson intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95


def z_for(confidence: float) -> float:
    """The two-sided standard normal quantile (1.959964 for 95 %)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


Z95 = z_for(CONFIDENCE)


@dataclass(frozen=True, slots=True)
class Proportion:
    """successes / trials with its Wilson interval; None where it is not defined."""

    successes: int
    trials: int
    rate: float | None
    low: float | None
    high: float | None


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of successes/trials; needs 0 <= successes <= trials, trials > 0."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"wilson needs 0 <= successes <= trials and trials > 0, "
                         f"got {successes}/{trials}")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # Clamp rounding noise: at 0 or n successes one bound is exactly 0 or 1.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def proportion(successes: int, trials: int, z: float = Z95) -> Proportion:
    """The rate and, when it is a proportion at all, its Wilson interval.

    More clicks than impressions happen when a client reports clicks but not impressions;
    the ratio is still returned, but no interval (it is not a proportion then).
    """
    if trials <= 0:
        return Proportion(successes, trials, None, None, None)
    rate = successes / trials
    if successes > trials:
        return Proportion(successes, trials, rate, None, None)
    low, high = wilson(successes, trials, z)
    return Proportion(successes, trials, rate, low, high)


@dataclass(frozen=True, slots=True)
class Difference:
    """rate(a) - rate(b) with Newcombe's hybrid score interval."""

    difference: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def newcombe(a: Proportion, b: Proportion) -> Difference | None:
    """Interval of a.rate - b.rate from the two Wilson intervals; None if either has none."""
    if a.rate is None or a.low is None or a.high is None:
        return None
    if b.rate is None or b.low is None or b.high is None:
        return None
    d = a.rate - b.rate
    low = d - math.sqrt((a.rate - a.low) ** 2 + (b.high - b.rate) ** 2)
    high = d + math.sqrt((a.high - a.rate) ** 2 + (b.rate - b.low) ** 2)
    return Difference(d, max(-1.0, low), min(1.0, high))
