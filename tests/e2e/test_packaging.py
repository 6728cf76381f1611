"""Packaging checks that need no bundle build: the PyInstaller spec, icons, desktop entry,
AppStream metainfo and ``--version``. (scripts/build_bundle.sh builds and smoke-tests the
bundle itself.)"""

from __future__ import annotations

import ast
import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from chatdesk.app import WINDOW_ICON_SIZES, app_icon
from chatdesk.providers import local

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC = REPO_ROOT / "chatdesk.spec"
RESOURCES = REPO_ROOT / "resources"
ICONS = RESOURCES / "icons"
DESKTOP_FILE = RESOURCES / "chatdesk.desktop"
APP_ID = "io.github.chatdesk.ChatDesk"
METAINFO = RESOURCES / f"{APP_ID}.metainfo.xml"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)
# X11 refuses a window icon property over 256 KiB: a 256 px icon (plus header) is over.
MAX_WINDOW_ICON_BYTES = 256 * 1024


def project_version() -> str:
    """The version in pyproject.toml."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]["version"]


def spec_constants() -> dict[str, object]:
    """The module-level constants (literals) assigned in chatdesk.spec."""
    tree = ast.parse(SPEC.read_text(encoding="utf-8"), filename=str(SPEC))
    found: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    found[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return found


def chatdesk_imports() -> set[str]:
    """Every module the chatdesk package imports (absolute imports only)."""
    modules: set[str] = set()
    for path in (REPO_ROOT / "chatdesk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module)
                modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


# -- the PyInstaller spec -----------------------------------------------------------------


def test_spec_is_python_and_bundles_model_resources_and_llama() -> None:
    text = SPEC.read_text(encoding="utf-8")
    ast.parse(text, filename=str(SPEC))
    constants = spec_constants()
    # The model goes where the local provider looks for it in a bundle.
    assert constants["MODEL_PACKAGE"] == local.BUNDLED_PACKAGE
    assert str(constants["MODEL_GLOB"]).endswith(".gguf")
    assert local.BUNDLED_FILE.endswith(".gguf")
    assert 'RESOURCES = ROOT / "resources"' in text
    assert 'collect_dynamic_libs("llama_cpp")' in text
    entry = REPO_ROOT / "scripts" / "chatdesk_entry.py"
    assert f'"{entry.parent.name}" / "{entry.name}"' in text
    assert "from chatdesk.app import main" in entry.read_text(encoding="utf-8")


def test_spec_excludes_nothing_chatdesk_imports() -> None:
    excluded = spec_constants()["EXCLUDED_MODULES"]
    assert isinstance(excluded, list)
    assert {"PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtSvg", "llm"} <= set(excluded)
    imported = chatdesk_imports()
    clashes = {
        module
        for module in imported
        for name in excluded
        if module == name or module.startswith(f"{name}.")
    }
    assert not clashes, f"chatdesk.spec excludes modules chatdesk imports: {sorted(clashes)}"
    qt_modules = {m for m in imported if m.startswith("PySide6.Qt") and m.count(".") == 1}
    assert qt_modules <= {"PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets"}, (
        "chatdesk uses a new Qt module: check chatdesk.spec bundles it"
    )


def test_build_script_is_valid_bash() -> None:
    script = REPO_ROOT / "scripts" / "build_bundle.sh"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "chatdesk.spec" in script.read_text(encoding="utf-8")


# -- icons --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ICON_SIZES)
def test_icon_png_has_its_size(size: int) -> None:
    image = QImage(str(ICONS / f"chatdesk-{size}.png"))
    assert not image.isNull()
    assert (image.width(), image.height()) == (size, size)
    assert image.hasAlphaChannel()
    # Transparent corners, something drawn in the middle.
    assert image.pixelColor(0, size - 1).alpha() == 0
    assert image.pixelColor(size // 2, size // 2).alpha() == 255


def test_window_icon_has_every_window_size_and_fits_in_an_x11_property(qapp) -> None:
    icon = app_icon()
    sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert sizes == {(n, n) for n in WINDOW_ICON_SIZES}
    # _NET_WM_ICON holds every size: width, height, then 4 bytes a pixel.
    assert sum(8 + 4 * n * n for n in WINDOW_ICON_SIZES) < MAX_WINDOW_ICON_BYTES


def test_icon_svg_is_square_xml() -> None:
    root = ET.parse(ICONS / "chatdesk.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    x, y, width, height = (float(v) for v in root.attrib["viewBox"].split())
    assert (x, y) == (0, 0)
    assert width == height


# -- desktop entry and AppStream metainfo ----------------------------------------------------


def test_desktop_entry_has_the_required_keys() -> None:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # keys are case-sensitive
    parser.read(DESKTOP_FILE, encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] == "ChatDesk"
    assert entry["Exec"].split()[0] == "chatdesk"
    assert entry["Icon"] == "chatdesk"
    assert entry["Terminal"] == "false"
    categories = entry["Categories"]
    assert categories.endswith(";")
    assert {"Network", "Chat"} <= set(categories.rstrip(";").split(";"))
    assert entry["Comment"]


def test_desktop_file_name_matches_the_app() -> None:
    # Wayland compositors and docks match windows to chatdesk.desktop by this name.
    app_source = (REPO_ROOT / "chatdesk" / "app.py").read_text(encoding="utf-8")
    match = re.search(r'setDesktopFileName\("([^"]+)"\)', app_source)
    assert match is not None
    assert f"{match[1]}.desktop" == DESKTOP_FILE.name


def test_desktop_entry_validates() -> None:
    result = subprocess.run(
        ["desktop-file-validate", str(DESKTOP_FILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout


def test_metainfo_parses_and_matches_the_app() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component"
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("name") == "ChatDesk"
    assert root.findtext("metadata_license")
    assert root.findtext("project_license") == "MIT"
    launchable = root.find("launchable")
    assert launchable is not None
    assert launchable.get("type") == "desktop-id"
    assert launchable.text == DESKTOP_FILE.name
    assert root.findtext("provides/binary") == "chatdesk"
    releases = root.findall("releases/release")
    assert releases
    assert releases[0].get("version") == project_version()


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="needs appstreamcli")
def test_metainfo_validates() -> None:
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the command line ---------------------------------------------------------------------


def test_version_option_prints_the_project_version() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-m", "chatdesk", "--version"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ChatDesk {project_version()}"
