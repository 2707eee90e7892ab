"""The figures, their same-run baselines, ratios and targets: one table, one JSON summary."""

from __future__ import annotations

from typing import Any


def _best(out: dict[str, Any], scenario: str) -> dict[str, Any] | None:
    best: dict[str, Any] | None = out.get("scenarios", {}).get(scenario, {}).get("best")
    return best


def _row(figure: str, measured: float | None, unit: str, baseline_name: str = "",
         baseline: float | None = None, ratio: float | None = None, target: str = "",
         met: bool | None = None) -> dict[str, Any]:
    return {"figure": figure, "measured": measured, "unit": unit,
            "baseline_name": baseline_name, "baseline": baseline, "ratio": ratio,
            "target": target, "met": met}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summarize(out: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    fw = _best(out, "framework")
    click = _best(out, "track-click")
    view = _best(out, "track-view")
    clicks = _best(out, "track-clicks")
    fw_rate = fw["offered"] if fw else None
    click_rate = click["offered"] if click else None
    if "scenarios" in out:
        db = out["database_ceiling"]
        bulk = out["bulk_ceiling"]
        rows.append(_row("framework ceiling (no DB)", fw_rate, "req/s"))
        r = _ratio(click_rate, fw_rate)
        rows.append(_row("track-click, max sustained", click_rate, "req/s",
                         "framework ceiling", fw_rate, r, ">= 0.60x",
                         r is not None and r >= 0.60))
        r = _ratio(click_rate, db["rate"])
        rows.append(_row("track-click vs per-row commits", click_rate, "req/s",
                         f"pgbench ({db['detail']})", db["rate"], r, ">= 1.5x",
                         r is not None and r >= 1.5))
        if view is not None or "track-view" in out["scenarios"]:
            v = view["offered"] if view else None
            r = _ratio(v, click_rate)
            rows.append(_row("track-view (dedup), max sustained", v, "req/s",
                             "track-click", click_rate, r, ">= 0.80x",
                             r is not None and r >= 0.80))
        if clicks is not None or "track-clicks" in out["scenarios"]:
            events = clicks["offered"] * clicks["events_per_request"] if clicks else None
            r = _ratio(events, bulk["rate"])
            rows.append(_row("track-clicks x50, max sustained", events, "events/s",
                             f"COPY ({bulk['detail']})", bulk["rate"], r, ">= 0.50x",
                             r is not None and r >= 0.50))
    half = out.get("latency_at_half")
    if half:
        p99 = half["latency_ms"].get("p99")
        rows.append(_row(f"track-click p99 at {half['offered']:.0f} req/s (half of max)", p99,
                         "ms", target="<= 25 ms", met=p99 is not None and p99 <= 25))
    soak = out.get("soak")
    if soak:
        rows.append(_row(f"soak {soak['seconds']:.0f} s at {soak['rate']:.0f} req/s: RSS growth",
                         soak["rss_growth"] * 100, "%", target="<= 10 %",
                         met=soak["memory_flat"]))
        rows.append(_row("soak: errors", soak["result"]["errors"], "",
                         target="0", met=soak["zero_errors"]))
    postgres_reuse = {t["projects"]: t["seconds"] for t in out.get("trending", [])
                      if t.get("profile", "postgres") == "postgres"}
    for t in out.get("trending", []):
        n = t["projects"]
        profile = t.get("profile", "postgres")
        raw = t.get("raw_seconds")
        base = "same formula from raw events" if raw else ""
        # Every mode of the job carries the targets.
        targets = (["<= 5 s"] if n == 100_000 else []) + ([">= 20x"] if raw else [])
        modes = [("rebuilding window totals", t.get("cold_seconds")),
                 ("shifting them an hour", t.get("shift_seconds")),
                 ("reusing them", t["seconds"])]
        for mode, seconds in modes:
            if seconds is None:
                continue
            speedup = _ratio(raw, seconds)
            met = seconds <= 5 if n == 100_000 else None
            rows.append(_row(f"trending job ({profile}), {n:,} projects x 48 h "
                             f"({t['hourly_rows']:,} rows), {mode}",
                             seconds, "s", base, raw, speedup, ", ".join(targets),
                             (met is not False) and (speedup is None or speedup >= 20)
                             if (met is not None or raw) else None))
        if profile != "postgres" and n in postgres_reuse:
            r = _ratio(t["seconds"], postgres_reuse[n])
            rows.append(_row(f"  same, {n:,} projects, reusing them, against postgres",
                             t["seconds"], "s", "postgres, same run", postgres_reuse[n], r,
                             "<= 1.5x", r is not None and r <= 1.5))
        if t.get("hourly_rebuild_seconds"):
            rows.append(_row(f"  same, {n:,} projects, rebuilding from the hourly rows alone "
                             f"(no blocks)", t["hourly_rebuild_seconds"], "s", base, raw,
                             _ratio(raw, t["hourly_rebuild_seconds"])))
        if t.get("blocks_hour_seconds") is not None:
            rows.append(_row(f"  refresh-rollups, {n:,} projects: the 4 trending blocks holding "
                             f"an hour (first fill {t['blocks_build_seconds']:.1f} s)",
                             t["blocks_hour_seconds"], "s"))
        if t.get("via_view_seconds"):
            full = t.get("cold_seconds") or t["seconds"]
            rows.append(_row(f"  same, {n:,} projects, rebuilding, vs the query through the view",
                             full, "s", "project_engagement_hourly",
                             t["via_view_seconds"], _ratio(t["via_view_seconds"], full)))
    return rows


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit in ("s", "ms", "%"):
        return f"{value:,.2f} {unit}".strip()
    return f"{value:,.0f} {unit}".strip()


def table(rows: list[dict[str, Any]]) -> str:
    header = ("figure", "measured", "baseline", "ratio", "target", "met")
    lines = []
    for r in rows:
        baseline = ""
        if r["baseline"] is not None:
            unit = r["unit"] if r["unit"] in ("s", "ms") else ""
            baseline = f"{_fmt(r['baseline'], unit)} {r['baseline_name']}"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else ""
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        lines.append((r["figure"], _fmt(r["measured"], r["unit"]), baseline, ratio,
                      r["target"], met))
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True))
            for line in lines]
    return "\n".join(out)
