"""An import-linter contract for what its own contracts leave out: cycles through a
package's ``__init__``.

``acyclic_siblings`` finds cycles between the modules (and subpackages) of one package, but
not ``hpo.cli`` -> ``hpo.cli.data`` -> ``hpo.cli``: a package that imports its children
while they import from it. This contract looks at every module of the root package,
``__init__`` modules included, and fails on any module that imports itself through others.
Registered in ``pyproject.toml`` (``contract_types``); ``lint-imports`` runs it.
"""

from __future__ import annotations

from typing import Any

import grimp
from importlinter.application import contract_utils, output
from importlinter.application.contract_utils import AlertLevel
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def module_cycles(graph: grimp.ImportGraph, root: str) -> list[list[str]]:
    """One import cycle (a list of modules, each importing the next, the last importing the
    first) per strongly connected group of modules under ``root``."""
    modules = sorted(m for m in graph.modules if m == root or m.startswith(root + "."))
    inside = set(modules)

    def imports(m: str) -> list[str]:
        return sorted(graph.find_modules_directly_imported_by(m) & inside)

    # Tarjan's algorithm, iterative (no recursion limit on a deep import chain).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(imports(start)))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, rest = work[-1]
            nxt = next(rest, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        group.append(m)
                        if m == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif nxt not in index:
                index[nxt] = low[nxt] = len(index)
                stack.append(nxt)
                on_stack.add(nxt)
                work.append((nxt, iter(imports(nxt))))
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
    cycles = []
    for group in sorted(groups):
        first = group[0]
        # Any way back to ``first`` from a module it imports stays inside its group.
        back = next(m for m in imports(first) if m in group)
        chain = graph.find_shortest_chain(importer=back, imported=first) or (back, first)
        cycles.append([first, *chain[:-1]])
    return cycles


class NoModuleCycles(Contract):
    """``type = "no_module_cycles"``: no module of the root package imports itself through
    others. ``ignore_imports`` as in import-linter's own contracts."""

    type_name = "no_module_cycles"

    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=AlertLevel.ERROR,
        )
        cycles: list[list[str]] = []
        for root in self.session_options["root_packages"]:
            cycles += module_cycles(graph, root)
        return ContractCheck(
            kept=not cycles,
            warnings=list(removal.warnings),
            metadata={"cycles": cycles},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        cycles: Any = check.metadata["cycles"]
        for cycle in cycles:
            output.print_error(" -> ".join([*cycle, cycle[0]]), bold=False)
            output.new_line()
