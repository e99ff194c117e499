"""The shape of the code base: no import cycle among psa's modules, and no module too long to
read in one sitting."""

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
MODULES = {
    ".".join(path.relative_to(SOURCE).with_suffix("").parts).removesuffix(".__init__"): path
    for path in (SOURCE / "psa").rglob("*.py")
}


def imports(name: str, path: Path) -> set[str]:
    """The psa modules that `name` imports, wherever in the file the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module if node.level == 0 else ".".join(name.split(".")[: -node.level] + [node.module or ""])
            # `from psa.engine.batched import ops` imports the module psa.engine.batched.ops.
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names}
    return {module for module in found if module in MODULES and module != name}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, as the list of its modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    return next((found for node in sorted(graph) if node not in state and (found := visit(node))), None)


def test_no_import_cycle():
    graph = {name: imports(name, path) for name, path in MODULES.items()}
    assert graph["psa.engine.batched.cuda"] >= {
        "psa.engine.batched.step",
        "psa.engine.batched.stack",
    }  # the scan sees imports
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_modules_stay_short():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 350}
    assert not long
