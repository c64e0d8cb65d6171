#!/usr/bin/env python3
"""Finds import cycles between the modules (files) of one crate.

Usage: scripts/import-cycles.py crates/engine/src [more src dirs...]

Each .rs file under a crate's src is a module (lib.rs or main.rs is the crate root,
foo/mod.rs is foo). A module depends on another when it names it in a `use` line
(`use crate::a::b`, `use super::x`, `use self::y`, or a child module by name) or in a
path in its code (`crate::a::f(...)`, `super::x::g(...)`). A parent's `pub use` of its
own descendants is not counted: that is the parent as a facade, not the parent using
them. Test modules (`mod tests`, `tests.rs`) are left out.

Prints a cycle of each group of modules that import each other (as `a -> b -> a`,
with the whole group when it is larger) and exits 1 if there is one, else 0.
"""

import os
import re
import sys


def module_of(src, path):
    """The module path of a file, as a tuple: () is the crate root."""
    relative = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if relative[-1] in ("lib", "main", "mod"):
        relative = relative[:-1]
    return tuple(relative)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def without_test_modules(text):
    """The text before `#[cfg(test)] mod tests { ... }` blocks (they sit at the end)."""
    match = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: match.start()] if match else text


def use_statements(text):
    """Each `use ...;` statement with whether it is a re-export (`pub use`)."""
    for match in re.finditer(r"(?m)^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", text):
        yield bool(match.group(1)), re.sub(r"\s+", "", match.group(2))


def expand(tree):
    """`a::{b, c::{d, e}}` as the paths a::b, a::c::d, a::c::e."""
    depth, start = 0, None
    for index, char in enumerate(tree):
        if char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                prefix, inner = tree[:start], tree[start + 1 : index]
                parts, depth2, last = [], 0, 0
                for position, each in enumerate(inner):
                    if each == "{":
                        depth2 += 1
                    elif each == "}":
                        depth2 -= 1
                    elif each == "," and depth2 == 0:
                        parts.append(inner[last:position])
                        last = position + 1
                parts.append(inner[last:])
                return [path for part in parts if part for path in expand(prefix + part)]
    return [tree]


def resolve(path, here, modules, reexports=None):
    """The module a path names (the longest known module prefix, followed through the
    re-exports of a facade to the module that defines the item), or None."""
    path = path.split(" as ")[0]
    parts = [part for part in path.split("::") if part]
    if not parts:
        return None
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    elif parts[0] == "super":
        base, rest = here, parts
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif parts[0] == "self":
        base, rest = here, parts[1:]
    elif here + (parts[0],) in modules:
        base, rest = here, parts
    else:
        return None  # another crate or the standard library
    best, used = base, 0
    for length in range(1, len(rest) + 1):
        candidate = base + tuple(rest[:length])
        if candidate in modules:
            best, used = candidate, length
    for _ in range(8):
        item = rest[used] if used < len(rest) else None
        target = (reexports or {}).get((best, item))
        if target is None:
            break
        best, rest, used = target, [item], 0
    return best


def graph_of(src):
    files = {}
    for directory, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs") and name != "tests.rs" and not name.endswith("_tests.rs"):
                path = os.path.join(directory, name)
                files[module_of(src, path)] = path
    modules = set(files)
    texts = {}
    for module, path in files.items():
        with open(path, encoding="utf-8") as handle:
            texts[module] = without_test_modules(strip_comments(handle.read()))
    # What each module re-exports (`pub use a::b::Item`): (module, name) -> the module
    # the name comes from, so that a use of the re-export counts as a use of its source.
    reexports = {}
    for module, text in texts.items():
        for public, tree in use_statements(text):
            if not public:
                continue
            for used in expand(tree):
                name = used.split(" as ")[-1].split("::")[-1]
                target = resolve(used, module, modules)
                if target is not None and target != module and name not in ("*", "self"):
                    reexports[(module, name)] = target
    edges = {module: set() for module in modules}
    for module, text in texts.items():
        for public, tree in use_statements(text):
            for used in expand(tree):
                target = resolve(used, module, modules, reexports)
                if target is None or target == module:
                    continue
                if public and target[: len(module)] == module:
                    continue  # a facade re-exporting its own descendants
                edges[module].add(target)
        code = re.sub(r"(?m)^\s*(pub(\([^)]*\))?\s+)?use\s+[^;]+;", "", text)
        for match in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", code):
            target = resolve(match.group(1), module, modules, reexports)
            if target is not None and target != module:
                edges[module].add(target)
    return edges


def cycles(edges):
    """Each group of modules that import each other (a strongly connected component of
    more than one module), with one shortest cycle through it."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append((sorted(component), shortest_cycle(edges, set(component))))

    sys.setrecursionlimit(10000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def shortest_cycle(edges, component):
    """A shortest cycle through the first module of a strongly connected component."""
    start = min(component)
    paths, frontier = {start: [start]}, [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(edges[node] & component):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    return [start, start]


def name(module):
    return "crate::" + "::".join(module) if module else "crate"


def main(arguments):
    if not arguments:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    failed = False
    for src in arguments:
        for members, cycle in cycles(graph_of(src)):
            failed = True
            print(f"{src}: import cycle: " + " -> ".join(name(module) for module in cycle))
            if len(members) > len(cycle) - 1:
                print("  modules caught in it: " + ", ".join(name(module) for module in members))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
