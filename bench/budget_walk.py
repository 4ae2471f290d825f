"""Where ``budget`` travels through one ``st-recipe train``: the functions of st_recipe that name it, in order.

A function "names budget" when ``budget`` is one of its local variables, arguments or attribute names (``recipe.budget``).
The walk is the ordered list of distinct such functions (first visit, class bodies and comprehensions left out);
``climbs back`` counts steps of the walk that return to a module the walk had already left, ``entries`` how often it
enters each module. Issue 23 measured 30 places in 14 modules, 13 climbs, the planner entered 6 times and the CLI
returned to 3 times at the start of round 3.

    python bench/budget_walk.py [--out walk.json] -- train --budget 3e11 --model random:pythia-14m --batch-size 32 --out /tmp/w --overwrite --quiet
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

_CALLS: list[tuple[str, str]] = []


def _profile(frame: Any, event: str, arg: Any) -> None:
    if event != "call":
        return
    code = frame.f_code
    module = frame.f_globals.get("__name__", "")
    # Functions only (CO_OPTIMIZED): class bodies and module code are not places budget passes through.
    if not module.startswith("st_recipe") or not code.co_flags & 1:
        return
    name = code.co_qualname
    if "<" in name:  # comprehensions and lambdas belong to the function around them
        return
    if "budget" in code.co_varnames or "budget" in code.co_names:
        _CALLS.append((module, name))


def summarise(calls: list[tuple[str, str]]) -> dict[str, Any]:
    """Places, modules, climbs back and entries per module of a walk."""
    walk = list(dict.fromkeys(calls))
    modules = [m for m, _ in walk]
    entries: Counter[str] = Counter()
    climbs, left = 0, set()
    for i, m in enumerate(modules):
        if i == 0 or m != modules[i - 1]:
            entries[m] += 1
            if m in left:
                climbs += 1
            if i:
                left.add(modules[i - 1])
    return {"places": len(walk), "modules": len(set(modules)), "climbs_back": climbs,
            "planner_entries": sum(v for k, v in entries.items() if k.endswith(".planner")),
            "cli_entries": sum(v for k, v in entries.items() if ".cli." in k),
            "entries": dict(entries), "calls": {f"{m}.{f}": n for (m, f), n in Counter(calls).items() if n > 1},
            "walk": [f"{m}.{f}" for m, f in walk]}


def main() -> None:
    argv = sys.argv[1:]
    out = None
    if argv[:1] == ["--out"]:
        out, argv = argv[1], argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    from st_recipe.cli import main as cli

    sys.setprofile(_profile)
    try:
        cli.main(argv, standalone_mode=False)
    finally:
        sys.setprofile(None)
    result = summarise(_CALLS)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "walk"}))
    print("\n".join(result["walk"]))


if __name__ == "__main__":
    main()
