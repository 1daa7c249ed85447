"""The architecture, checked: which module writes which table, and which layer imports which.

Both rules are read from the source (the AST), so they hold for code paths no test runs. The
README's "Where things live" section states the same rules for people.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "broadcaster"
MIGRATIONS = PACKAGE / "store" / "migrations"

#: The one module that writes each table (DESIGN §7: each table has one owner).
OWNERS = {
    "announcements": "store/announcements.py",
    "revisions": "store/announcements.py",
    "approvals": "store/approvals.py",
    "approval_cards": "store/approval_cards.py",
    "audit_events": "store/audit.py",
    "deliveries": "store/deliveries.py",
    "jobs": "queue/jobs.py",
    "rate_slots": "queue/ratelimit.py",
    "recipient_lists": "store/recipients.py",
    "list_members": "store/recipients.py",
    "opt_outs": "store/recipients.py",
    "callback_tokens": "store/callbacks.py",
}

#: The core: the modules at the package's top level (app, config, worker_runtime, ...).
CORE = tuple(sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("__")))

#: What each layer may import from broadcaster (prefixes). Core modules (the package's top
#: level) may import every layer but cli/, sandbox/ and server/; cli/ may import everything.
ALLOWED = {
    # privacy: a leaf that masks phone numbers in error texts before they are stored.
    "store": ("store", "model", "errors", "timeutil", "privacy"),
    "queue": ("queue", "store", "model", "errors", "timeutil", "privacy"),
    "rendering": ("rendering", "config", "model", "errors", "timeutil"),
    "channels": (
        "channels",
        "config",
        "model",
        "errors",
        "rendering",
        "fileio",
        "timeutil",
        "privacy",
        "signing",
        "schema_errors",
        "platform_urls",
    ),
    "sandbox": ("sandbox", "errors", "signing", "schema_errors"),
    # The HTTP side (`serve`): an entry point like the CLI, but it reaches the platforms and the
    # database only through the core, store and queue, never through cli/ or sandbox/.
    "server": ("server", "store", "queue", *CORE),
    "scaffold": ("scaffold", "errors", "fileio"),
}
CORE_FORBIDDEN = ("cli", "sandbox", "server")


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if MIGRATIONS in path.parents:
            continue
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def writes(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(table, line) for every INSERT, UPDATE or DELETE the module builds."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            # update(table), insert(table), delete(table), insert_[many_]or_ignore(conn, table, ...)
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in ("update", "insert", "delete") and isinstance(func, ast.Name):
                if node.args and isinstance(node.args[0], ast.Name):
                    yield node.args[0].id, node.lineno
            elif name in ("insert_or_ignore", "insert_many_or_ignore") and len(node.args) > 1:
                table = node.args[1]
                if isinstance(table, ast.Name):
                    yield table.id, node.lineno
            # table.insert(), table.update(), table.delete()
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in ("insert", "update", "delete")
                and isinstance(func.value, ast.Name)
                and func.value.id in OWNERS
            ):
                yield func.value.id, node.lineno
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = re.match(r"\s*(?:INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", node.value, re.I)
            if match:
                yield match.group(1).lower(), node.lineno


def imports(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(module inside broadcaster, line) for every import of the package's own modules."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "broadcaster":
                for alias in node.names:
                    yield alias.name, node.lineno
            elif node.module.startswith("broadcaster."):
                yield node.module.removeprefix("broadcaster."), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("broadcaster."):
                    yield alias.name.removeprefix("broadcaster."), node.lineno


def test_every_table_is_written_by_its_owner_only() -> None:
    found = []
    for module, tree in modules():
        for table, line in writes(tree):
            owner = OWNERS.get(table)
            if owner is not None and module != owner:
                found.append(f"broadcaster/{module}:{line} writes {table} (owner: {owner})")
    assert found == []


def test_the_ownership_check_sees_writes() -> None:
    """The check above must be able to fail: it finds the writes the owners do make."""
    seen = {
        table
        for module, tree in modules()
        for table, _ in writes(tree)
        if module in OWNERS.values()
    }
    assert seen == set(OWNERS)


def layer_of(module: str) -> str:
    return module.split("/")[0] if "/" in module else "core"


@pytest.mark.parametrize("layer", [*ALLOWED, "core"])
def test_layers_import_only_what_they_may(layer: str) -> None:
    found = []
    for module, tree in modules():
        if layer_of(module) != layer:
            continue
        for imported, line in imports(tree):
            top = imported.split(".")[0]
            if layer == "core":
                # __main__ is an entry point (`python -m broadcaster`), like the CLI itself.
                allowed = top not in CORE_FORBIDDEN or module == "__main__.py"
            else:
                allowed = top in ALLOWED[layer]
            if not allowed:
                found.append(f"broadcaster/{module}:{line} imports broadcaster.{imported}")
    assert found == []


def test_nothing_but_the_entry_points_imports_the_cli() -> None:
    found = [
        f"broadcaster/{module}:{line}"
        for module, tree in modules()
        if layer_of(module) != "cli" and module != "__main__.py"
        for imported, line in imports(tree)
        if imported.split(".")[0] == "cli"
    ]
    assert found == []
