"""The shape of the code base: packages by layer whose imports only go down, no import cycle among
psa's modules, no module too long to read in one sitting, no argparse below the command line, and
an import of psa that changes nothing."""

import ast
import json
import subprocess
import sys
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


# psa's layers from the bottom: a module may import its own layer's and those of lower ones. Layers
# of one rank are independent of each other. The package itself (psa/__init__, its public face)
# stands above the layers it shows; the command line and `python -m psa` above everything.
LAYERS = {
    "psa.errors": 0,
    "psa.version": 0,
    "psa.files": 1,
    "psa.progress": 1,
    "psa.published": 1,
    "psa.trial": 2,
    "psa.engine": 3,
    "psa.store": 3,
    "psa.sweeps": 4,
    "psa.study": 5,
    "psa.bench": 5,
    "psa.clusters": 6,
    "psa": 7,
    "psa.cli": 8,
    "psa.__main__": 9,
}


def layer(module: str) -> str:
    """The layer a module belongs to: its top-level package or module under psa."""
    return ".".join(module.split(".")[:2])


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up, or sideways into another layer of the same rank."""
    return [
        f"{name} -> {target}"
        for name, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer(target) != layer(name) and LAYERS[layer(target)] >= LAYERS[layer(name)]
    ]


def test_every_module_belongs_to_a_layer():
    assert {layer(name) for name in MODULES} == set(LAYERS)
    top_level = [path.name for path in (SOURCE / "psa").iterdir() if path.suffix == ".py"]
    assert len(top_level) <= 8, top_level


def test_imports_only_go_down():
    graph = {name: imports(name, path) for name, path in MODULES.items()}
    assert graph["psa.engine.batched.cuda"] >= {"psa.engine.batched.step", "psa.engine.batched.stack"}
    assert upward(graph) == []


def test_the_layer_check_finds_an_upward_import():
    graph = {"psa.trial.spec": {"psa.store"}, "psa.study.export": {"psa.store", "psa.bench"}, "psa.store": set()}
    assert upward(graph) == ["psa.study.export -> psa.bench", "psa.trial.spec -> psa.store"]


def test_no_import_cycle():
    graph = {name: imports(name, path) for name, path in MODULES.items()}
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_modules_stay_short():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 350}
    assert not long


def test_no_function_below_the_command_line_takes_parsed_arguments():
    """argparse is the command line's: below it, functions take typed values."""
    found = [
        f"{name}: {node.lineno}"
        for name, path in MODULES.items()
        if layer(name) != "psa.cli"
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.Name) and node.id == "argparse")
        or (isinstance(node, ast.FunctionDef) and "args" in [a.arg for a in node.args.args + node.args.kwonlyargs])
        or (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "args")
    ]
    assert found == []


def test_importing_psa_changes_nothing_in_the_process():
    """Not the environment (torch reads THP_MEM_ALLOC_ENABLE), not glibc's allocator: psa tunes
    the process where training starts (psa.engine.memory), never on import."""
    probe = (
        "import importlib, json, os, pkgutil, sys; before = dict(os.environ); import psa; "
        "names = [m.name for m in pkgutil.walk_packages(psa.__path__, 'psa.') if m.name != 'psa.__main__']; "
        "[importlib.import_module(name) for name in names]; "
        "print(json.dumps([len(names), dict(os.environ) == before]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    count, unchanged = json.loads(done.stdout)
    assert count >= 60 and unchanged
