"""Which app may import which: the dependency contract, and the check that reads it from the source.

Dependencies point one way. At the bottom, a small kernel every app shares (errors, roles, request
parameters, API fields, the read-only admin base, the bounded JSON parser, and the audit log); then
`workstation` (what runs on a GPU host, no database) and `environments` (the packages, which run
their scorers in the workstation's sandbox); the workstation agent (`workstation.agent`, the tasks a
GPU host runs for the site: it runs the environments' packages, so it sits above them); `trials`
(who works where and when) above them; `graders` (turning attempts into numbers) above `trials`;
`review` beside them, on the kernel alone; and the rest of `rebench_site` (URLs, the demo, the
site's pages) on top, free to import anything.

Where a lower app must reach a higher one it does not import it: `trials` calls the grading port
(`trials.grading`) that `graders` fills in at start-up, and templates compose pages from several
apps' template tags. `tests/rebench_site/test_dependencies.py` runs `violations()` over the tree, so an
import that points the wrong way, at module level or inside a function, fails the build.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

KERNEL_MODULES = (
    "rebench_site.errors",
    "rebench_site.roles",
    "rebench_site.params",
    "rebench_site.api_fields",
    "rebench_site.admin_records",
    "rebench_site.bounded_json",
    "audit",
)

# A package of `workstation` that is a layer of its own, above `environments`.
AGENT_MODULES = ("workstation.agent",)

# Each layer and what it may import besides itself. The site (the rest of rebench_site) may import anything.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "kernel": frozenset(),
    "workstation": frozenset(),
    "environments": frozenset({"kernel", "workstation"}),
    "agent": frozenset({"kernel", "workstation", "environments"}),
    "trials": frozenset({"kernel", "workstation", "environments", "agent"}),
    "graders": frozenset({"kernel", "workstation", "environments", "agent", "trials"}),
    "review": frozenset({"kernel"}),
    "site": frozenset({"kernel", "workstation", "environments", "agent", "trials", "graders", "review"}),
}

APPS = ("rebench_site", "audit", "workstation", "environments", "trials", "graders", "review")


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to; None for what is not the project's (Django, the stdlib)."""
    for kernel in KERNEL_MODULES:
        if module == kernel or module.startswith(kernel + "."):
            return "kernel"
    for agent in AGENT_MODULES:
        if module == agent or module.startswith(agent + "."):
            return "agent"
    top = module.split(".")[0]
    if top == "rebench_site":
        return "site"
    if top in APPS:
        return top
    return None


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    importer: str
    imported: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.importer} imports {self.imported}, "
            f"which layer {layer_of(self.importer)!r} may not import"
        )


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every project module `tree` imports: `import x`, `from x import y` (relative ones resolved), and
    `import_module("x")` / `__import__("x")` with a literal name, wherever in the file they sit."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if "." in name:
                yield node.lineno, name
            else:  # `from rebench_site import roles` imports rebench_site.roles, a kernel module
                for alias in node.names:
                    yield node.lineno, f"{name}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def _allowed(importer: str, imported: str) -> bool:
    source, target = layer_of(importer), layer_of(imported)
    if source is None or target is None or source == target:
        return True
    return target in MAY_IMPORT[source]


def violations_in(source: str, *, module: str, path: str = "<source>", is_package: bool = False) -> list[Violation]:
    """The imports in `source`, read as the module `module`, that point the wrong way."""
    found: dict[tuple[int, str | None], Violation] = {}
    for line, imported in _imported_names(ast.parse(source), module, is_package):
        if not _allowed(module, imported):
            found.setdefault((line, layer_of(imported)), Violation(path, line, module, imported))
    return list(found.values())


def python_files(root: Path, apps: Iterable[str] = APPS) -> Iterator[Path]:
    for app in apps:
        yield from sorted((root / app).rglob("*.py"))


def violations(root: Path) -> list[Violation]:
    """Every wrong-way import in the project's apps under `root`."""
    found = []
    for path in python_files(root):
        found += violations_in(
            path.read_text(),
            module=module_name(path, root),
            path=str(path.relative_to(root)),
            is_package=path.name == "__init__.py",
        )
    return found
