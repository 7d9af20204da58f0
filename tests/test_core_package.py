"""The package layout: orbitd needs nothing of the rendezvous, and the wheel installs
exactly orbitcore, orbitd and rendezvous, with the UI's files inside orbitcore."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("orbitcore", "orbitd", "rendezvous")


def imported_modules(source: str) -> set[str]:
    """The absolute modules a source file imports (relative imports stay inside a package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def imports_of(package: str, other: str) -> list[str]:
    """`file: module` for every import of package `other` in the sources of `package`."""
    files = sorted((ROOT / package).rglob("*.py"))
    assert len(files) > 5, f"no sources found under {ROOT / package}"
    return [
        f"{path.relative_to(ROOT)}: {module}"
        for path in files
        for module in sorted(imported_modules(path.read_text(encoding="utf-8")))
        if module == other or module.startswith(other + ".")
    ]


def test_the_import_walk_sees_every_form_of_import() -> None:
    source = (
        "import rendezvous.errors\nfrom rendezvous import x\n"
        "def f():\n    from rendezvous.settings import y\nfrom . import z\n"
    )
    assert imported_modules(source) == {"rendezvous.errors", "rendezvous", "rendezvous.settings"}


def test_orbitd_imports_nothing_of_the_rendezvous_and_the_core_neither_program() -> None:
    assert imports_of("orbitd", "rendezvous") == []
    assert imports_of("rendezvous", "orbitd") == []
    assert imports_of("orbitcore", "orbitd") + imports_of("orbitcore", "rendezvous") == []


def source_packages() -> set[str]:
    return {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in PACKAGES
        for init in (ROOT / top).rglob("__init__.py")
    }


def test_pyproject_lists_every_package_of_the_tree_and_web_as_data() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(setuptools["packages"]) == source_packages() | {"orbitcore.web"}
    assert setuptools["package-dir"] == {"orbitcore.web": "web"}
    assert not list((ROOT / "web").rglob("*.py")), "web/ holds the UI's files, no Python"


def build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources (the checkout gets no build files)."""
    source = tmp_path / "src"
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in (*PACKAGES, "web"):
        shutil.copytree(ROOT / name, source / name, ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path / "wheel"
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--no-cache-dir", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = out.glob("chatorbit-*.whl")
    return wheel


def test_the_wheel_installs_three_packages_and_carries_the_ui_files(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == set(PACKAGES)
    for package in source_packages():
        assert f"{package.replace('.', '/')}/__init__.py" in names
    prefix = "orbitcore/web/"
    web = {name.removeprefix(prefix) for name in names if name.startswith(prefix)}
    expected = {str(p.relative_to(ROOT / "web")) for p in (ROOT / "web").rglob("*") if p.is_file()}
    assert web == expected and "templates/base.html" in web and "i18n/en/common.json" in web
    assert not any(name.endswith(".py") for name in web)

    # Installed from the wheel, the core finds its files inside itself.
    found = subprocess.run(
        [sys.executable, "-c", FIND_WEB],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site")},
        check=True,
        capture_output=True,
        text=True,
    )
    assert found.stdout.split() == [str(tmp_path / "site" / "orbitcore" / "web"), "True", "None"]


FIND_WEB = """
import importlib.util
from orbitcore.ui import WEB_ROOT
from orbitcore.i18n import catalog
print(WEB_ROOT, bool(catalog("en")["common"]), importlib.util.find_spec("web"))
"""


def test_the_editable_install_finds_the_checkouts_web_folder(tmp_path: Path) -> None:
    found = subprocess.run(
        [sys.executable, "-c", FIND_WEB],
        cwd=tmp_path,  # not the checkout, so only the installed finder can find orbitcore
        check=True,
        capture_output=True,
        text=True,
    )
    assert found.stdout.split() == [str(ROOT / "web"), "True", "None"]
