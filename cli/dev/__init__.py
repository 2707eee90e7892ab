"""Development only: a local PostgreSQL for `engagement dev`, demo traffic for `engagement
demo`, and the demo page. The production app imports none of it."""
