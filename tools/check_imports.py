"""Check the imports between our packages: no import cycles, and the layering tools → classify → augment →
stylegan_ada (a package imports only its own layer and the ones below it).

    .venv/bin/python tools/check_imports.py [ROOT]

Every import counts, also one inside a function (a lazy import still runs, so a circle through it is a circle), an
``importlib.import_module("pkg.mod")`` with a literal name, and a string constant naming one of our modules as
``"pkg.mod"`` or ``"pkg.mod:attr"`` (the lazy CLI command tables). Prints one line per finding and a summary line;
exit status 1 when a cycle or a layering violation is found that ALLOWED does not list, else 0. Reads files as text
and runs none of them.
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Lowest first: a module may import its own layer and those below it.
LAYERS = ("stylegan_ada", "augment", "classify", "tools")

# (importing module, imported module) -> why it is tolerated for now. Each entry names who owns the fix.
ALLOWED: dict[tuple[str, str], str] = {}

_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?$")


@dataclass(frozen=True)
class Edge:
    """`src` imports `dst` at `path:line` (`lazy`: inside a function, or by name)."""

    src: str
    dst: str
    path: str
    line: int
    lazy: bool


@dataclass
class Report:
    modules: int = 0
    edges: list[Edge] = field(default_factory=list)
    cycles: list[list[str]] = field(default_factory=list)
    violations: list[Edge] = field(default_factory=list)
    allowed: list[tuple[Edge, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.cycles and not self.violations


def find_modules(root: Path) -> dict[str, Path]:
    """Module name -> file for every .py file of the layered packages under `root` (packages by their __init__)."""
    modules: dict[str, Path] = {}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")) if (root / package).is_dir() else []:
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of dotted `name` that is one of our modules."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _imported_names(node: ast.AST, module: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """Our modules that one import statement (or import_module call, or name string) loads."""
    if isinstance(node, ast.Import):
        return [m for m in (_known(alias.name, modules) for alias in node.names) if m]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[:len(package) - (node.level - 1)]
            base = ".".join(package + ([base] if base else []))
        found = [_known(f"{base}.{alias.name}" if base else alias.name, modules) for alias in node.names]
        return [m for m in found if m]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "import_module" and isinstance(node.args[0].value, str):
            target = _known(node.args[0].value, modules)
            return [target] if target else []
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.match(node.value):
        target = node.value.split(":")[0]
        return [target] if target in modules else []
    return []


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_edges(module: str, path: Path, modules: dict[str, Path], root: Path) -> list[Edge]:
    """Every import of one of our modules that `module` makes."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    top_package = module.split(".")[0]
    edges: list[Edge] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking_block(child):  # never runs: annotations only
                for branch in child.orelse:
                    visit(ast.Module(body=[branch], type_ignores=[]), lazy)
                continue
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            by_name = isinstance(child, ast.Constant)
            for target in _imported_names(child, module, is_package, modules):
                if target != module:
                    edges.append(Edge(module, target, str(path.relative_to(root)), child.lineno, inner or by_name))
            if top_package == "tools" and isinstance(child, ast.Import):  # tools/ scripts import each other bare
                for alias in child.names:
                    if f"tools.{alias.name}" in modules and f"tools.{alias.name}" != module:
                        edges.append(Edge(module, f"tools.{alias.name}", str(path.relative_to(root)),
                                          child.lineno, inner))
            visit(child, inner)

    visit(tree, False)
    return edges


def find_cycles(modules: list[str], edges: list[Edge]) -> list[list[str]]:
    """One shortest cycle per strongly connected component of more than one module, as [a, b, ..., a]."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for edge in edges:
        graph[edge.src].add(edge.dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(start: str) -> None:  # Tarjan's algorithm, iterative (deep chains must not hit recursion)
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for module in sorted(graph):
        if module not in index:
            strongconnect(module)
    return [_shortest_cycle(component, graph) for component in sorted(components)]


def _shortest_cycle(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return component  # not reached for a strongly connected component


def layer_of(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def check(root: Path, allowed: dict[tuple[str, str], str] | None = None) -> Report:
    """Cycles and layering violations among the modules under `root`."""
    allowed = ALLOWED if allowed is None else allowed
    modules = find_modules(root)
    report = Report(modules=len(modules))
    for module, path in modules.items():
        report.edges.extend(module_edges(module, path, modules, root))
    permitted = [e for e in report.edges if (e.src, e.dst) not in allowed]
    report.allowed = [(e, allowed[(e.src, e.dst)]) for e in report.edges if (e.src, e.dst) in allowed]
    report.cycles = find_cycles(list(modules), permitted)
    report.violations = [e for e in permitted if layer_of(e.dst) > layer_of(e.src)]
    return report


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else Path(__file__).resolve().parents[1]).resolve()
    report = check(root)
    for cycle in report.cycles:
        print("cycle: " + " -> ".join(cycle))
    for e in report.violations:
        print(f"layering: {e.path}:{e.line} {e.src} imports {e.dst}{' (lazily)' if e.lazy else ''}; "
              f"{e.src.split('.')[0]} must not import {e.dst.split('.')[0]} (layers, lowest first: "
              f"{' < '.join(LAYERS)})")
    for e, why in report.allowed:
        print(f"allowed: {e.path}:{e.line} {e.src} imports {e.dst}: {why}")
    print(f"imports: {report.modules} modules, {len(report.edges)} imports between them; {len(report.cycles)} "
          f"cycles, {len(report.violations)} layering violations, {len(report.allowed)} allowed")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
