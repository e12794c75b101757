"""Generators of the long-time-lag benchmarks, one example at a time, from a ``random.Random``.

Each follows the task as Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", section 5,
define it (experiment numbers are the paper's); the copy task is the copying-memory problem of
Arjovsky, Shah & Bengio (2016), "Unitary Evolution Recurrent Neural Networks". The functions are
pure: the same ``rng`` state gives the same example, so data modules seed one generator per
example and need to store nothing.
"""

from __future__ import annotations

import random

# -- experiment 4: the adding problem ------------------------------------------------------------


def adding_example(rng: random.Random, T: int) -> tuple[list[float], list[float], float]:
    """One sequence of the adding problem: (values, markers, target).

    The length is drawn from [T, T + T/10]. Values are uniform in [-1, 1]. Exactly two pairs are
    marked with 1.0: one of the first ten (X1), then one of the first T/2 - 1 still unmarked ones
    (X2). The first and the last pair carry the marker -1.0 unless marked, every other pair 0.0;
    a marked first pair has its value set to 0 (the paper's rule for X1). The target, given only
    at the end, is 0.5 + (X1 + X2) / 4, which lies in [0, 1].
    """
    if T < 22:
        raise ValueError(f"the adding problem needs T >= 22 (the second mark is among the first T/2 - 1 pairs), got {T}")
    L = rng.randint(T, T + T // 10)
    values = [rng.uniform(-1.0, 1.0) for _ in range(L)]
    markers = [0.0] * L
    markers[0] = markers[-1] = -1.0
    first = rng.randrange(10)
    second = rng.choice([j for j in range(T // 2 - 1) if j != first])
    for i in (first, second):
        markers[i] = 1.0
        if i == 0:
            values[0] = 0.0
    return values, markers, 0.5 + (values[first] + values[second]) / 4.0


# -- experiments 6a and 6b: temporal order ---------------------------------------------------------

TEMPORAL_ORDER_SYMBOLS = ["a", "b", "c", "d", "B", "E", "X", "Y"]
# the windows the relevant symbols fall in (positions, counting the leading E as position 0)
TEMPORAL_ORDER_WINDOWS = {2: [(10, 20), (50, 60)], 3: [(10, 20), (33, 43), (66, 76)]}
TEMPORAL_ORDER_CLASSES = {2: ["Q", "R", "S", "U"], 3: ["Q", "R", "S", "U", "V", "A", "B", "C"]}


def temporal_order_example(rng: random.Random, num_relevant: int = 2) -> tuple[list[str], int]:
    """One sequence of the temporal-order task: (symbols, class id).

    The sequence starts with E, ends with the trigger B, and is otherwise random symbols from
    a-d, except at ``num_relevant`` positions (2: task 6a, 3: task 6b), one in each window of
    ``TEMPORAL_ORDER_WINDOWS``, that hold X or Y. Its length is drawn from [100, 110]. The class
    is the order of the Xs and Ys read as a binary number (X = 0, Y = 1): for 6a X,X -> Q,
    X,Y -> R, Y,X -> S, Y,Y -> U, as in the paper.
    """
    if num_relevant not in TEMPORAL_ORDER_WINDOWS:
        raise ValueError(f"num_relevant must be 2 (task 6a) or 3 (task 6b), got {num_relevant}")
    L = rng.randint(100, 110)
    symbols = ["E"] + [rng.choice("abcd") for _ in range(L - 2)] + ["B"]
    label = 0
    for lo, hi in TEMPORAL_ORDER_WINDOWS[num_relevant]:
        which = rng.randrange(2)
        symbols[rng.randint(lo, hi)] = "XY"[which]
        label = 2 * label + which
    return symbols, label


# -- experiment 1: the embedded Reber grammar ------------------------------------------------------

REBER_SYMBOLS = ["B", "T", "P", "S", "X", "V", "E"]
# Reber's finite-state grammar: state -> the two (symbol, next state) edges, each taken with p 1/2
_REBER = {
    0: [("T", 1), ("P", 2)],
    1: [("S", 1), ("X", 3)],
    2: [("T", 2), ("V", 4)],
    3: [("X", 2), ("S", 5)],
    4: [("P", 3), ("V", 5)],
}


def reber_string(rng: random.Random) -> tuple[list[str], list[set[str]]]:
    """One string of the Reber grammar (B ... E) and, for each symbol but the last, the set of
    symbols that may come next."""
    symbols, nexts, state = ["B"], [], 0
    while state != 5:
        edges = _REBER[state]
        nexts.append({s for s, _ in edges})
        symbol, state = edges[rng.randrange(2)]
        symbols.append(symbol)
    nexts.append({"E"})
    symbols.append("E")
    return symbols, nexts


def embedded_reber_example(rng: random.Random) -> tuple[list[str], list[set[str]]]:
    """One string of the embedded Reber grammar: B, T or P, a Reber string, the same T or P, E.

    Returns the symbols and, for every symbol but the last, the set of possible next symbols.
    Only the symbol before the last is a long-lag prediction: it is the second symbol again, and
    the net must remember it across the whole inner string.
    """
    branch = "TP"[rng.randrange(2)]
    inner, inner_next = reber_string(rng)
    symbols = ["B", branch, *inner, branch, "E"]
    nexts = [{"T", "P"}, {"B"}, *inner_next, {branch}, {"E"}]
    return symbols, nexts


def embedded_reber_stream(rng: random.Random, num_strings: int) -> tuple[list[str], list[set[str]]]:
    """``num_strings`` embedded Reber strings back to back, with no reset between them (the
    continual task of Gers, Schmidhuber & Cummins 2000): after each final E comes a B."""
    symbols: list[str] = []
    nexts: list[set[str]] = []
    for n in range(num_strings):
        s, nx = embedded_reber_example(rng)
        symbols += s
        nexts += nx + [{"B"}]
    return symbols, nexts


# -- the copy (copying-memory) task ------------------------------------------------------------------


def copy_example(rng: random.Random, delay: int = 100, num_copy: int = 10, num_symbols: int = 8) -> tuple[list[int], list[int]]:
    """One sequence of the copying-memory problem: (inputs, targets), both of length
    ``delay + 2 * num_copy``.

    Inputs: ``num_copy`` symbols drawn from 1..num_symbols, ``delay - 1`` blanks (0), the
    delimiter ``num_symbols + 1``, then ``num_copy`` blanks. Targets: blanks everywhere except the
    last ``num_copy`` steps, which repeat the first ``num_copy`` inputs. A net that does not
    remember scores the cross-entropy ``num_copy * log(num_symbols) / (delay + 2 * num_copy)``.
    """
    if delay < 1 or num_copy < 1 or num_symbols < 2:
        raise ValueError(f"copy task needs delay >= 1, num_copy >= 1, num_symbols >= 2 (got {delay}, {num_copy}, {num_symbols})")
    data = [rng.randint(1, num_symbols) for _ in range(num_copy)]
    inputs = data + [0] * (delay - 1) + [num_symbols + 1] + [0] * num_copy
    targets = [0] * (delay + num_copy) + data
    return inputs, targets
