#!/usr/bin/env python3
"""Prints the include graph between the engine's layer folders and checks it.

  python3 tools/layers.py [--quiet] [ROOT]

Fails (exit 1) when:
  - a folder includes a header of a folder on its own floor or above it (an upward or
    sideways edge): the order is in LAYERS below and in docs/architecture.md;
  - an include names a header that no engine folder has;
  - two modules include each other, directly or through others (a circle): a module is
    a .c/.h pair, checked in engine/ and in bench/fedisim/.

Headers found with <...> are system or library headers and are not followed. Only the
standard library is needed.
"""
import os
import re
import sys

# Floors, highest first. A folder may include only folders on a lower floor.
LAYERS = [
    ["cli"],
    ["ops"],
    ["cluster"],
    ["ingest", "sched"],
    ["policy"],
    ["store", "net", "sign"],
    ["codec", "loop"],
    ["base"],
]
RANK = {f: len(LAYERS) - i for i, floor in enumerate(LAYERS) for f in floor}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(folder):
    for dirpath, _, names in os.walk(folder):
        for n in sorted(names):
            if n.endswith((".c", ".h")):
                yield os.path.join(dirpath, n)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return INCLUDE.findall(f.read())


def module_of(path):
    """X.c, X.h and X_impl.h (its private part) are module X."""
    m = os.path.splitext(os.path.basename(path))[0]
    return m[:-5] if m.endswith("_impl") else m


def find_cycles(edges):
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def module_cycles(folder, errors, label):
    files = list(sources(folder))
    mods = {module_of(p) for p in files}
    edges = {}
    for p in files:
        m = module_of(p)
        for inc in includes(p):
            dep = module_of(inc)
            if dep != m and dep in mods:
                edges.setdefault(m, set()).add(dep)
    for comp in find_cycles(edges):
        errors.append("%s: include circle between modules %s" % (label, ", ".join(comp)))


def main(argv):
    quiet = "--quiet" in argv
    args = [a for a in argv if not a.startswith("--")]
    root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    engine = os.path.join(root, "engine")
    errors = []

    folders = sorted(d for d in os.listdir(engine) if os.path.isdir(os.path.join(engine, d)))
    for d in folders:
        if d not in RANK:
            errors.append("engine/%s: folder has no floor in tools/layers.py" % d)
    owner = {}  # header name -> folder
    for d in folders:
        for p in sources(os.path.join(engine, d)):
            if p.endswith(".h"):
                name = os.path.basename(p)
                if name in owner:
                    errors.append("header %s is in both engine/%s and engine/%s"
                                  % (name, owner[name], d))
                owner[name] = d

    graph = {}  # (from, to) -> number of includes
    for d in folders:
        for p in sources(os.path.join(engine, d)):
            rel = os.path.relpath(p, root)
            for inc in includes(p):
                name = os.path.basename(inc)
                if name not in owner:
                    if not inc.startswith("herald/"):
                        errors.append("%s: includes \"%s\", which no engine folder has" % (rel, inc))
                    continue
                to = owner[name]
                if to == d:
                    continue
                graph[(d, to)] = graph.get((d, to), 0) + 1
                if d in RANK and to in RANK and RANK[to] >= RANK[d]:
                    kind = "sideways" if RANK[to] == RANK[d] else "upward"
                    errors.append("%s: %s include of %s (engine/%s)" % (rel, kind, inc, to))

    edges = {}
    for (a, b) in graph:
        edges.setdefault(a, set()).add(b)
    for comp in find_cycles(edges):
        errors.append("include circle between folders %s" % ", ".join(comp))
    module_cycles(engine, errors, "engine")
    fedisim = os.path.join(root, "bench", "fedisim")
    if os.path.isdir(fedisim):
        module_cycles(fedisim, errors, "bench/fedisim")

    if not quiet:
        print("engine layers, highest first: %s" % " -> ".join(", ".join(f) for f in LAYERS))
        print("include graph between folders (includes):")
        for d in sorted(folders, key=lambda f: (-RANK.get(f, 0), f)):
            outs = sorted((b for (a, b) in graph if a == d), key=lambda f: (-RANK.get(f, 0), f))
            print("  %-7s -> %s" % (d, ", ".join("%s(%d)" % (b, graph[(d, b)]) for b in outs)
                                   or "-"))
    for e in errors:
        print("layers: " + e, file=sys.stderr)
    if errors:
        print("layers: %d problem(s)" % len(errors), file=sys.stderr)
        return 1
    if not quiet:
        print("layers: ok (no upward or sideways include, no circle)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
