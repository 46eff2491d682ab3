"""`pip install tarn`: the wheel maturin builds from pyproject.toml (its
`bin` bindings, as ruff and uv ship theirs) carries the `tarn` binary; it
installs into a fresh virtual environment, and the installed `tarn` serves
the API databricks-sdk talks to."""

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from conftest import CACHE, REPO, Tarn


def build_wheel(out: Path) -> Path:
    # The dev profile reuses the test run's debug build; a release wheel is
    # `maturin build --release` (docs/install.md).
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(CACHE / "target"))
    maturin = Path(sys.executable).parent / "maturin"
    subprocess.run(
        [str(maturin), "build", "--profile", "dev", "--locked", "--compatibility", "linux", "--out", str(out)],
        cwd=REPO, env=env, check=True, capture_output=True, timeout=1200,
    )
    wheels = list(out.glob("tarn-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_installs_a_working_tarn(monkeypatch):
    work = Path(tempfile.mkdtemp(prefix="tarn-wheel-"))
    try:
        wheel = build_wheel(work / "dist")
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            metadata = next(z.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        assert any(n.endswith(".data/scripts/tarn") for n in names), names
        assert "Name: tarn" in metadata

        venv = work / "venv"
        uv = Path(sys.executable).parent / "uv"
        subprocess.run([str(uv), "venv", "-q", str(venv)], check=True, timeout=120)
        subprocess.run([str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(wheel)],
                       check=True, timeout=600)
        installed = venv / "bin" / "tarn"
        version = subprocess.run([str(installed), "--version"], capture_output=True, text=True, check=True)
        assert version.stdout.startswith("tarn ")

        monkeypatch.setenv("TARN_BIN", str(installed))
        home = work / "home"
        home.mkdir()
        server = Tarn(home).start()
        try:
            assert server.client().current_user.me().user_name == "admin"
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
