"""The layer boundary: no core module imports Qt, so the core runs without a display.

The core is every module of ``chatdesk`` except the ``ui`` package, ``app`` (the
composition root that builds the window) and ``__main__`` (which runs ``app``). Two
checks, because each catches what the other cannot: importing every core module in a
fresh interpreter sees Qt pulled in through any chain of imports, third-party ones
included; scanning the source sees an import of Qt that is only reached at run time
(inside a function, or under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import chatdesk

PACKAGE_DIR = Path(chatdesk.__file__).parent
REPO_ROOT = PACKAGE_DIR.parent

# Top-level packages that are Qt or need it (qasync drives the Qt event loop).
QT_PACKAGES = frozenset({"PySide6", "shiboken6", "PySide2", "PyQt5", "PyQt6", "qasync", "pytestqt"})
# Modules of chatdesk that may import Qt, and that the core therefore must not import.
QT_SIDE = ("chatdesk.ui", "chatdesk.app", "chatdesk.__main__")


def _is_qt_side(module: str) -> bool:
    return any(module == side or module.startswith(side + ".") for side in QT_SIDE)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def core_modules() -> dict[str, Path]:
    """Every core module of chatdesk, by dotted name, with its source file."""
    found = {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}
    return {name: path for name, path in found.items() if not _is_qt_side(name)}


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``tree``, wherever it stands."""
    package = module if is_package else module.rpartition(".")[0]
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.append((node.lineno, base))
            # "from chatdesk import ui" imports a module too.
            names += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append((node.lineno, node.args[0].value))
    return names


def qt_imports_in_source(modules: dict[str, Path]) -> list[str]:
    """``path:line imports name`` for each import of Qt (or of the Qt side) in ``modules``."""
    problems: dict[tuple[Path, int], str] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in _imported_names(tree, module, path.name == "__init__.py"):
            if name.split(".")[0] in QT_PACKAGES or _is_qt_side(name):
                # One report per import statement: "from X import a, b" names X first.
                problems.setdefault((path, line), name)
    return [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {name}"
        for (path, line), name in problems.items()
    ]


# Run in a fresh interpreter: imports each module in turn and reports the first one after
# which any Qt package is loaded, with the Qt modules it brought in.
_PROBE = """
import importlib, json, sys
qt = set(json.loads(sys.argv[1]))
def loaded():
    return sorted(m for m in sys.modules if m.split(".")[0] in qt)
result = {"before": loaded(), "culprit": None, "loaded": []}
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
    if loaded():
        result.update(culprit=name, loaded=loaded())
        break
print(json.dumps(result))
"""


def qt_loaded_by_importing(modules: list[str]) -> dict[str, object]:
    """What a fresh interpreter reports after importing ``modules`` (see ``_PROBE``)."""
    # This checkout first, so its modules are the ones imported.
    path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(sorted(QT_PACKAGES)), json.dumps(modules)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_the_core_is_found_and_the_qt_side_is_not_part_of_it() -> None:
    modules = core_modules()
    assert {"chatdesk.sessions", "chatdesk.chat", "chatdesk.storage.database"} <= set(modules)
    assert "chatdesk.storage.session_rows" in modules
    assert not [m for m in modules if _is_qt_side(m)]


def test_importing_every_core_module_loads_no_qt() -> None:
    result = qt_loaded_by_importing(sorted(core_modules()))
    assert result["before"] == [], "Qt was loaded before any chatdesk module"
    assert result["culprit"] is None, (
        f"importing {result['culprit']} (or a module it imports) loaded {result['loaded']}"
    )


def test_no_core_module_has_an_import_of_qt_or_the_ui() -> None:
    problems = qt_imports_in_source(core_modules())
    assert problems == [], "the core must not import Qt or chatdesk.ui:\n" + "\n".join(problems)


def test_the_source_scan_sees_every_form_of_import(tmp_path: Path) -> None:
    # The scan is only worth having if it catches imports hidden in functions,
    # under TYPE_CHECKING, relative ones and dynamic ones.
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from PySide6.QtCore import QObject\n"
        "def later():\n"
        "    import shiboken6\n"
        "    from .. import ui\n"
        "    import importlib\n"
        "    importlib.import_module('qasync')\n"
        "import json\n",
        encoding="utf-8",
    )
    tree = ast.parse(source.read_text(encoding="utf-8"))
    names = {name for _, name in _imported_names(tree, "chatdesk.storage.probe", False)}
    assert {"PySide6.QtCore", "shiboken6", "chatdesk.ui", "qasync", "json"} <= names
