"""A generated movie-review corpus whose labels depend on word order (seeded, no download).

Every review is made of clauses about an aspect of a film ("the plot was very dull", "good
acting"). Each clause has a polarity (+1 / -1) and a strength (1, or 2 with an intensifier). The
review's label follows three rules a bag of words cannot see:

* **negation** flips the clause it belongs to: "the plot was not dull" is positive, and
  "not very good" is mildly negative (strength 1);
* **contrast**: in "A but B" and "although A , B" the clause B decides, so "good acting but a
  dull plot" is negative while "a dull plot but good acting" is positive: the same words;
* **intensity**: in "A and B" the stronger clause wins, so "a very good plot and dull acting"
  is positive while "a good plot and very dull acting" is negative.

Reviews where "and" joins two clauses of equal strength and opposite polarity are not generated
(they have no clear label). The label of every review is computed from its structure, so the
corpus has no label noise: a model that reads in order can reach 100%.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

POSITIVE = ["good", "great", "excellent", "wonderful", "brilliant", "superb", "enjoyable", "charming",
            "moving", "clever", "gripping", "delightful"]
NEGATIVE = ["bad", "dull", "boring", "awful", "terrible", "weak", "tedious", "clumsy", "bland", "silly",
            "forgettable", "messy"]
ASPECTS = ["acting", "plot", "script", "music", "cast", "direction", "dialogue", "ending", "pacing",
           "soundtrack", "camera work", "story", "cinematography", "humour", "editing"]
INTENSIFIERS = ["very", "really", "extremely", "incredibly", "truly", "remarkably"]
NEGATIONS = ["not", "never", "hardly", "not at all"]  # "not at all" reads "was not at all good"
VERBS = ["was", "is", "felt", "seemed"]
OPENERS = ["", "", "", "honestly ,", "overall ,", "i thought", "to be fair ,", "in short ,"]
ENDINGS = ["", "", "", ".", "!", ". i watched it on sunday .", ". my friends came along ."]


@dataclass
class Clause:
    aspect: str
    adjective: str
    polarity: int  # +1 / -1 of the adjective
    intensified: bool
    negated: bool

    @property
    def score(self) -> int:
        """Polarity times strength after negation: 'not very good' is -1, 'very good' is +2."""
        p = -self.polarity if self.negated else self.polarity
        strength = 2 if self.intensified and not self.negated else 1
        return p * strength

    def render(self, rng: random.Random) -> str:
        adj = f"{rng.choice(INTENSIFIERS)} {self.adjective}" if self.intensified else self.adjective
        if self.negated or rng.random() < 0.5:  # predicative: "the plot was (not) (very) good"
            neg = f"{rng.choice(NEGATIONS)} " if self.negated else ""
            return f"the {self.aspect} {rng.choice(VERBS)} {neg}{adj}"
        article = rng.choice(["", "a ", "the "]) if self.aspect not in ("acting", "music", "pacing", "editing", "humour") else ""
        return f"{article}{adj} {self.aspect}"


def _clause(rng: random.Random, negated: bool | None = None, intensified: bool | None = None) -> Clause:
    polarity = rng.choice([1, -1])
    adjective = rng.choice(POSITIVE if polarity > 0 else NEGATIVE)
    if negated is None:
        negated = rng.random() < 0.3
    if intensified is None:
        intensified = rng.random() < 0.35
    return Clause(rng.choice(ASPECTS), adjective, polarity, intensified, negated)


def review(rng: random.Random) -> tuple[str, str, str]:
    """One (text, label, structure) triple; structure names the rule that decides the label."""
    kind = rng.choices(["single", "negated", "but", "although", "and"], weights=[30, 15, 20, 10, 25])[0]
    if kind in ("single", "negated"):
        c = _clause(rng, negated=kind == "negated")
        body, score = c.render(rng), c.score
    elif kind in ("but", "although"):
        a = _clause(rng)
        b = _clause(rng)
        while (a.score > 0) == (b.score > 0):  # contrast joins clauses of opposite sentiment
            b = _clause(rng)
        body = f"{a.render(rng)} but {b.render(rng)}" if kind == "but" else f"although {a.render(rng)} , {b.render(rng)}"
        score = b.score
    else:
        a = _clause(rng, negated=False, intensified=True)
        b = _clause(rng, negated=False, intensified=False)
        if a.polarity == b.polarity:
            b.polarity, b.adjective = -a.polarity, rng.choice(NEGATIVE if a.polarity > 0 else POSITIVE)
        if rng.random() < 0.5:
            a, b = b, a
        body, score = f"{a.render(rng)} and {b.render(rng)}", a.score + b.score
    text = " ".join(p for p in (rng.choice(OPENERS), body) if p) + (" " + rng.choice(ENDINGS) if rng.random() < 0.5 else "")
    return " ".join(text.split()), "positive" if score > 0 else "negative", kind


def generate_reviews(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (text, label) pairs, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [review(rng)[:2] for _ in range(n)]
