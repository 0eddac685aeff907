"""Short texts in four topics with little shared vocabulary, for the text workspaces of the journey and
export tests: a probe on TF-IDF or MiniLM vectors tells them apart from three labels a topic."""

from __future__ import annotations

TOPICS = {
    "sport": ["football match goal striker league", "tennis player serve set match", "marathon runners race finish",
              "basketball coach team quarter", "goalkeeper penalty match league", "cyclists race stage team",
              "boxer title fight round", "swimmers relay race record", "cricket captain team innings",
              "rugby team match try"],
    "cooking": ["simmer tomato sauce garlic basil", "knead bread dough flour oven", "whisk eggs sugar butter cake",
                "roast chicken lemon oven herbs", "fry onions butter garlic pan", "bake chocolate cake oven flour",
                "season soup salt pepper herbs", "marinate beef soy ginger garlic", "boil pasta salted water sauce",
                "stir risotto stock butter cheese"],
    "finance": ["bank interest rates inflation", "stock markets shares investors fell", "company profits revenue shares",
                "investors bonds equities markets", "currency dollar exchange rates bank", "mortgage rates bank loans",
                "bank forecast growth inflation", "shares earnings investors profits", "pension fund assets investors",
                "oil prices markets investors"],
    "space": ["rocket satellite orbit launch", "astronomers planet star telescope", "rover mars surface rocks",
              "astronauts space station orbit", "telescope galaxy stars images", "comet sun orbit ice",
              "lunar lander moon surface", "black hole star galaxy", "probe jupiter moons orbit",
              "meteor shower night sky stars"],
}
NAMES = list(TOPICS)
