"""The longest chain of a generated project's own module-level imports, per task: how many
imports deep the package goes (the goal: at most 7).

    python scripts/import_depth.py                  # bake each task, print its longest chain
    python scripts/import_depth.py PROJECT_DIR ...  # projects already baked

A chain counts the package's modules that load one another when the first is imported: a
module-level `import` or `from` of the package (imports inside functions load later, when
called, and are left out). Deep chains make a change's reach hard to see and slow every command's
start. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import ast
import functools
import sys
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import cookiecutter_json, snapshot_template


def module_name(package_dir: Path, path: Path) -> str:
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(node: ast.ImportFrom, current: str, is_package: bool) -> list[str]:
    """The absolute module names an `ImportFrom` may load (`from . import x` may load `x`)."""
    if node.level:
        base = current.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [prefix, *(f"{prefix}.{alias.name}" for alias in node.names)]


def top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements a module runs when imported, inside `if` and `try` blocks too, except
    `if TYPE_CHECKING:`, which loads nothing at run time."""
    statements = []
    for node in body:
        if isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                statements += top_level(node.body)
            statements += top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                statements += top_level(block)
        else:
            statements.append(node)
    return statements


def module_imports(package_dir: Path) -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports at module level."""
    paths = {module_name(package_dir, path): path for path in package_dir.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        found: set[str] = set()
        for node in top_level(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                found |= set(resolve(node, name, is_package))
        # Importing a.b.c loads a and a.b first: parents count as edges too.
        loaded = set()
        for target in found:
            parts = target.split(".")
            loaded |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        # A module's own packages are loaded before it: importing from them loads nothing new.
        parts = name.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts) + (not is_package))}
        graph[name] = {
            target for target in loaded if target in paths and target not in ancestors | {name}
        }
    return graph


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    @functools.cache
    def chain(module: str, visiting: frozenset[str] = frozenset()) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for target in sorted(graph[module]):
            if target in visiting:  # a cycle: Python stops at the half-loaded module too
                continue
            candidate = chain(target, visiting | {module})
            if len(candidate) > len(best):
                best = candidate
        return (module, *best)

    longest: tuple[str, ...] = ()
    for module in sorted(graph):
        found = chain(module)
        if len(found) > len(longest):  # the first of the longest, as max() would pick
            longest = found
    return list(longest)


def report(project: Path) -> None:
    [package_dir] = [p for p in (project / "src").iterdir() if (p / "__init__.py").is_file()]
    chain = longest_chain(module_imports(package_dir))
    prefix = package_dir.name + "."
    shown = " -> ".join(module.removeprefix(prefix) for module in chain)
    print(f"{len(chain) - 1} imports deep ({len(chain)} modules): {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("projects", nargs="*", type=Path, help="baked projects (default: bake)")
    args = parser.parse_args()
    if args.projects:
        for project in args.projects:
            report(project)
        return
    with tempfile.TemporaryDirectory() as tmp:
        template = snapshot_template(Path(tmp) / "template")
        for task in cookiecutter_json()["task"]:
            out = Path(tmp) / task
            cookiecutter(
                str(template),
                no_input=True,
                extra_context={"task": task},
                output_dir=str(out),
                default_config=True,
            )
            project = next(out.iterdir())
            print(f"{task:<22}", end="")
            report(project)


if __name__ == "__main__":
    main()
