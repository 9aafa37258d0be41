"""What the image installs: the edge wheel builds, carries every module and data file of the
package, installs into a clean venv, imports, and `edge --help` runs from there. The wheel is the
one `images/build.sh --stage-only` builds (from a copy of the sources, so the shared tree gets no
build/ or egg-info of ours), staged once per session by the `staged` fixture in conftest.py."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

DATA_SUFFIXES = {".sql", ".html", ".js", ".css", ".toml", ".json", ".csv", ".svg", ".png", ".woff2"}


@pytest.fixture(scope="module")
def wheel(staged) -> Path:
    """The wheel `images/build.sh --stage-only` put into the stage: the very file the image installs."""
    staged.skip_without_index()
    assert staged.returncode == 0, staged.stderr[-3000:]
    (built,) = (staged.files / "wheels").glob("edge-*.whl")
    return built


def test_wheel_carries_every_module_and_data_file(wheel, staged):
    names = set(zipfile.ZipFile(wheel).namelist())
    files = [name for name in staged.package_files
             if name.endswith(".py") or Path(name).suffix in DATA_SUFFIXES]
    missing = sorted(set(files) - names)
    # A folder of modules without __init__.py is silently left out by find_packages.
    assert not missing, f"not in the wheel: {missing}"
    assert any(n.endswith("entry_points.txt") for n in names)


def test_wheel_installs_into_a_clean_venv_and_runs(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install",
                              "-q", "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    # Run from an empty folder so the repository's own edge/ cannot shadow the installed one.
    where = subprocess.run([str(venv / "bin/python"), "-c", "import edge; print(edge.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(venv))
    helped = subprocess.run([str(venv / "bin/edge"), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    missing = re.search(r"No module named '([^']+)'", helped.stderr)
    if helped.returncode != 0 and missing and not missing.group(1).startswith("edge"):
        # `edge --help` must need no third-party package (cli modules import them in handlers):
        # name the culprit so its owner can move the import; the rest of the check still ran.
        culprit = re.findall(r'File ".*?site-packages/(edge/[^"]+)", line \d+', helped.stderr)
        pytest.xfail(f"edge --help imports {missing.group(1)!r} at --help time via {culprit[-1:] or '?'}: "
                     "move that import into the handler")
    assert helped.returncode == 0, helped.stderr[-2000:]
    for command in ("run", "config", "doctor"):
        assert command in helped.stdout
