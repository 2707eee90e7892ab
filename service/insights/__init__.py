"""Insights for the site's staff: CTR by feed and position, A/B variants, heatmaps, return viewers."""
