#!/usr/bin/env python3
"""Fails when a module of a workspace crate uses, directly or through others, a module that uses it back.

Each file under a crate's src/ is a module (lib.rs and main.rs are the crate root, `crate`). An edge
A -> B is any path `crate::B` in A, `super::B` in a file module, or, in the root, a path starting with a
module's name (`use answer::...`). Test modules count too. Run by `make lint`; prints the module graph's
cycles, or "no module cycles in N crates (M modules)".
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def crate_sources():
    for manifest in sorted(ROOT.glob("**/Cargo.toml")):
        src = manifest.parent / "src"
        if "target" in manifest.parts or not src.is_dir() or manifest.parent == ROOT:
            continue
        yield manifest.parent.relative_to(ROOT), src


def module_name(src, path):
    relative = path.relative_to(src).with_suffix("")
    parts = list(relative.parts)
    if parts in (["lib"], ["main"]):
        return "crate"
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts and parts[0] == "bin":
        return None  # each bin is a crate of its own, rooted in the library
    return "::".join(parts)


def edges(src):
    modules = {}
    for path in sorted(src.rglob("*.rs")):
        name = module_name(src, path)
        if name is not None:
            modules.setdefault(name, []).append(path.read_text(encoding="utf-8"))
    top = {name.split("::")[0] for name in modules if name != "crate"}
    graph = {name: set() for name in modules}
    for name, texts in modules.items():
        text = "\n".join(texts)
        # Strip comments so a doc line naming `crate::x` is not an edge.
        text = re.sub(r"//[^\n]*", "", text)
        used = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))
        # `use crate::{a, b::c}` groups name several modules at once.
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            used |= set(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
        if name != "crate":
            parent = name.rsplit("::", 1)[0] if "::" in name else "crate"
            for child in re.findall(r"\bsuper::([a-z_][a-z0-9_]*)", text):
                used.add(child if parent == "crate" else f"{parent}::{child}")
        else:
            used |= {m for m in re.findall(r"\buse\s+([a-z_][a-z0-9_]*)::", text) if m in top}
            used |= {m for m in re.findall(r"\b([a-z_][a-z0-9_]*)::[A-Za-z_]", text) if m in top}
        for target in used:
            target = target if target in graph else target.split("::")[0]
            if target in graph and target != name:
                graph[name].add(target)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
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
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main():
    failures, crates, total = [], 0, 0
    for crate, src in crate_sources():
        graph = edges(src)
        crates += 1
        total += len(graph)
        for component in cycles(graph):
            detail = "; ".join(f"{m} -> {', '.join(sorted(graph[m] & set(component)))}" for m in component)
            failures.append(f"{crate}: cycle among {', '.join(component)} ({detail})")
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print(f"no module cycles in {crates} crates ({total} modules)")


if __name__ == "__main__":
    main()
