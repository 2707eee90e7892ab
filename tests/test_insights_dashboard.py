"""The Grafana CTR panels agree with the insights API and with raw counts (demo history)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.test_dashboards import engagement_data, expand, sql_queries  # noqa: F401 - fixture

POSITION_PANEL = "CTR by feed and position"
VARIANT_PANEL = "A/B variants: CTR with 95 % interval"


def _range() -> tuple[datetime, datetime]:
    """Whole hours: Grafana's BETWEEN and the API's half-open range then cover the same buckets."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return hour - timedelta(days=3), hour + timedelta(hours=1) - timedelta(seconds=1)


def _panel(db, title: str, project: str = "0"):
    raw = {t: r for _, t, r in sql_queries()}[title]
    start, end = _range()
    cur = db.execute(expand(raw, start=start, end=end, project=project))
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _api(api, path: str, **params):
    start, end = _range()
    params.update({"from": start.isoformat(), "to": (end + timedelta(seconds=1)).isoformat()})
    r = api.client.get(path, params=params, headers=api.internal)
    assert r.status_code == 200, r.text
    return r.json()


def test_position_panel_matches_the_ctr_endpoint(api, db, engagement_data):  # noqa: F811
    panel = {row["Feed"]: row for row in _panel(db, POSITION_PANEL)}
    body = _api(api, "/api/v1/insights/ctr/")
    totals = {t["source"]: t for t in body["totals"]}
    assert set(panel) == set(totals) and len(panel) >= 3
    for feed, total in totals.items():
        assert abs(panel[feed]["All"] - total["ctr"]) < 1e-12, feed
    by_position = {(r["source"], r["position"]): r["ctr"] for r in body["positions"]}
    for (feed, position), ctr in by_position.items():
        if position is not None and position < 20:
            got = panel[feed][str(position)]
            assert (got is None and ctr is None) or abs(got - ctr) < 1e-12, (feed, position)


def test_position_panel_for_one_project_counts_only_its_events(db, engagement_data):  # noqa: F811
    project = engagement_data[0]
    panel = {row["Feed"]: row["All"] for row in _panel(db, POSITION_PANEL, f"'{project}'")}
    start, end = _range()
    rows = db.execute(
        "SELECT source, sum(c)::float8 / nullif(sum(i), 0) FROM ("
        " SELECT source, 0 AS c, 1 AS i FROM project_impressions"
        "  WHERE project_id = %(p)s AND created_at >= %(s)s AND created_at < %(e)s"
        " UNION ALL SELECT source, 1, 0 FROM project_clicks"
        "  WHERE project_id = %(p)s AND created_at >= %(s)s AND created_at < %(e)s) x "
        "GROUP BY source",
        {"p": project, "s": start, "e": end + timedelta(seconds=1)}).fetchall()
    assert panel.keys() == {r[0] for r in rows}
    for feed, ctr in rows:
        assert (panel[feed] is None and ctr is None) or abs(panel[feed] - ctr) < 1e-12, feed


def test_variant_panel_matches_the_variants_endpoint(api, db, engagement_data):  # noqa: F811
    panel = _panel(db, VARIANT_PANEL)
    assert {row["Variant"] for row in panel} == {"control", "ranker-v2"}
    for row in panel:
        body = _api(api, "/api/v1/insights/variants/", source=row["Feed"])
        (api_row,) = [v for v in body["variants"] if v["variant"] == row["Variant"]]
        assert (row["Impressions"], row["Clicks"]) == (api_row["impressions"], api_row["clicks"])
        for column, key in (("CTR", "ctr"), ("CTR low", "ctr_low"), ("CTR high", "ctr_high")):
            assert abs(row[column] - api_row[key]) < 1e-9, (row, api_row)
