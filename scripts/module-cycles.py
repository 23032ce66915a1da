#!/usr/bin/env python3
"""Fails on a cycle among the modules of a crate's source tree.

Usage: scripts/module-cycles.py [SRC_DIR]   (default: kernels/src)

Every `.rs` file is a module (`lib.rs` the crate root, `a/mod.rs` the
module `a`). A module depends on another where its code names it: a
`crate::a::b` or `super::…` path, in a `use` or inline (comments and doc
comments aside; a `mod child;` declaration is not a dependency). A path is
resolved to the deepest module it names. The crate root is left out: it
declares and re-exports the modules, and they name it for nothing else.
Prints the dependency graph, then each cycle found (strongly connected
components of more than one module), and exits 1 if there is one.
"""
import os
import re
import sys


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"):
        rel = rel[:-1]
    return tuple(rel)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        # Line comments (doc comments included), leaving string contents alone
        # as far as this crate needs: no `//` inside its string literals.
        i = line.find("//")
        out.append(line if i < 0 else line[:i])
    return "\n".join(out)


def expand_use_groups(text):
    """`use a::{b, c::d};` -> `a::b; a::c::d;` (one level of nesting is enough
    for the crate's style; deeper groups are expanded repeatedly)."""
    pat = re.compile(r"((?:crate|super|self)(?:::\w+)*)::\{([^{}]*)\}")
    while True:
        m = pat.search(text)
        if not m:
            return text
        parts = [p.strip() for p in m.group(2).split(",") if p.strip()]
        text = text[: m.start()] + " ".join(f"{m.group(1)}::{p}" for p in parts) + text[m.end():]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "kernels/src"
    modules = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                modules[module_of(root, p)] = p
    deps = {m: set() for m in modules if m}
    for m, p in modules.items():
        if not m:
            continue
        with open(p) as fh:
            text = expand_use_groups(strip_comments(fh.read()))
        # In a `mod.rs` or `lib.rs`, `super` names the parent of the module.
        for path in re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text):
            seg = path.split("::")
            if seg[0] == "crate":
                base, rest = (), seg[1:]
            else:
                base = m
                while seg and seg[0] in ("super", "self"):
                    if seg[0] == "super":
                        base = base[:-1]
                    seg = seg[1:]
                rest = seg
            target = base
            for s in rest:
                if target + (s,) in modules:
                    target = target + (s,)
                else:
                    break
            if target and target != m:
                deps[m].add(target)
    name = lambda m: "::".join(m)
    print("module graph (A -> what A uses):")
    for m in sorted(deps):
        print(f"  {name(m)} -> {', '.join(sorted(name(t) for t in deps[m])) or '-'}")
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(deps):
        if v not in index:
            visit(v)
    if sccs:
        for c in sccs:
            members = set(c)
            edges = [
                f"{name(a)} -> {name(b)}"
                for a in sorted(c)
                for b in sorted(deps[a])
                if b in members
            ]
            print(f"CYCLE among {', '.join(sorted(name(x) for x in c))}:")
            for e in edges:
                print(f"    {e}")
        return 1
    print("no module cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
