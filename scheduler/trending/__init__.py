"""Trending: the job that scores projects by the velocity of their views and likes."""
