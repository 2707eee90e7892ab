"""The source enums of the original design; the database CHECK constraints match them."""

from typing import Literal

ViewSource = Literal["explore", "profile", "direct", "search", "embed"]
ClickSource = Literal["explore_for_you", "explore_trending", "explore_new", "explore_news",
                      "search", "profile", "related"]
