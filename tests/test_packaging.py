"""The package layout: every subpackage is installed, and shipped studies are found from
anywhere."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

from tests.helpers import ROOT


def test_every_package_under_hpo_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {p for p in find_packages(str(ROOT), include=["hpo*"])} | {"hpo.studies"}
    assert listed == found


def test_shipped_studies_are_found_from_an_empty_directory(tmp_path: Path) -> None:
    code = (
        "from hpo.kinds import load_spec\n"
        "s = load_spec('svm'); print(s.name, s.kind, s.path.name)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "svm svm svm.toml"


def test_a_local_study_file_shadows_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    text = (ROOT / "studies" / "svm.toml").read_text().replace('name = "svm"', 'name = "mine"')
    (tmp_path / "studies" / "svm.toml").write_text(text)
    code = "from hpo.kinds import load_spec\nprint(load_spec('svm').name)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "mine"


def test_no_module_imports_torch_at_import_time() -> None:
    code = (
        "import importlib, pkgutil, sys, hpo\n"
        "for m in pkgutil.walk_packages(hpo.__path__, 'hpo.'):\n"
        "    if m.name != 'hpo.__main__' and '.w2v.' not in m.name:\n"
        "        importlib.import_module(m.name)\n"
        "import hpo.kinds.w2v, hpo.kinds.w2v.config\n"
        "print(sorted(x for x in ('torch', 'transformers') if x in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
