"""The wheel and sdist carry everything the service reads at run time, and the wheel's code finds it inside itself.

`.ci/run` goes further: it installs the wheel in a clean virtualenv, migrates, serves and fetches the banner.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
# The folders kept at the top of the checkout that the wheel carries inside the package (setup.cfg, package_dir).
SHIPPED = ("static/banner", "migrations")
# What a checkout holds that is not source: never copied into the build.
LEFT_BEHIND = (".*", "__pycache__", "*.egg-info", "build", "dist", "instance", "node_modules")


def files_under(folder: Path) -> list[Path]:
    return sorted(
        path.relative_to(ROOT)
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and not path.name.startswith(".")
    )


@pytest.fixture(scope="module")
def distributions(tmp_path_factory) -> dict[str, Path]:
    """Build the sdist, then the wheel from it, as `python -m build` and pip do."""
    if importlib.util.find_spec("build") is None:
        skip_or_fail("the build package is not installed (pip install -e '.[test]')")
    # From a copy: building writes build/ and cmp.egg-info/ next to the sources, which another run may be reading.
    source = tmp_path_factory.mktemp("source") / "cmp"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFT_BEHIND))
    outdir = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(source)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = outdir.glob("*.whl")
    (sdist,) = outdir.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def wheel(distributions) -> set[str]:
    """The wheel's file names."""
    with zipfile.ZipFile(distributions["wheel"]) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="module")
def sdist(distributions) -> set[str]:
    """The sdist's file names, without its top folder (cmp-<version>/)."""
    with tarfile.open(distributions["sdist"]) as archive:
        return {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}


@pytest.mark.parametrize("folder", SHIPPED)
def test_the_wheel_carries_each_file_of_the_shipped_folders_inside_the_package(wheel, folder):
    expected = files_under(ROOT / folder)
    assert expected, folder
    missing = [str(path) for path in expected if f"cmp/{path.as_posix()}" not in wheel]
    assert missing == []


def test_the_wheel_carries_every_migration_revision(wheel):
    revisions = sorted(path.name for path in (ROOT / "migrations" / "versions").glob("*.py"))
    packaged = sorted(name.rsplit("/", 1)[1] for name in wheel if name.startswith("cmp/migrations/versions/"))
    assert packaged == revisions


def test_the_wheel_carries_every_module_template_and_stylesheet_of_the_package(wheel):
    """setup.cfg lists the packages by hand: a new subpackage missing there would be left out of the wheel."""
    missing = [str(path) for path in files_under(ROOT / "cmp") if path.as_posix() not in wheel]
    assert missing == []


@pytest.mark.parametrize("folder", (*SHIPPED, "cmp"))
def test_the_sdist_carries_each_file_of_the_package_and_the_shipped_folders(sdist, folder):
    expected = files_under(ROOT / folder)
    assert expected, folder
    missing = [str(path) for path in expected if path.as_posix() not in sdist]
    assert missing == []


def test_the_wheels_code_reads_its_migrations_and_banner_from_inside_itself(distributions, tmp_path):
    """Unpacked outside the checkout, the wheel's cmp builds the banner and lists every revision from its own files."""
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(distributions["wheel"]) as wheel:
        wheel.extractall(unpacked)
    probe = (
        "import cmp\n"
        "from alembic.script import ScriptDirectory\n"
        "from cmp.banner import bundle\n"
        "print(cmp.__file__)\n"
        "print(cmp.MIGRATIONS)\n"
        "print(bundle.SOURCE)\n"
        "print(len(list(ScriptDirectory(str(cmp.MIGRATIONS)).walk_revisions())))\n"
        "print(len(bundle.build().script))\n"
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CMP_")}
    # The unpacked wheel comes first on the path, ahead of this checkout's editable install.
    environment["PYTHONPATH"] = str(unpacked)
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    module, migrations, source, revisions, script_size = result.stdout.split()
    assert Path(module) == unpacked / "cmp" / "__init__.py"
    assert Path(migrations) == unpacked / "cmp" / "migrations"
    assert Path(source) == unpacked / "cmp" / "static" / "banner"
    assert int(revisions) == len(list((ROOT / "migrations" / "versions").glob("*.py")))
    assert int(script_size) > 0
