"""The "Python 3 (Codex)" kernelspec: shipped in the wheel, and its kernels load the extension.

The wheel is built from this checkout; the kernelspec is taken out of the wheel (not from the
source tree) into a scratch kernels folder, and a kernel is started from it through
jupyter_client, as Jupyter would.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
KERNEL_NAME = "codex-python3"
SPEC_IN_WHEEL = f"data/share/jupyter/kernels/{KERNEL_NAME}/kernel.json"
EXPECTED_ARGV = [
    "python",
    "-m",
    "ipykernel_launcher",
    "-f",
    "{connection_file}",
    "--ext=codex_notebook",
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel`` of this checkout (offline when hatchling is already installed)."""
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check"]
    if importlib.util.find_spec("hatchling") is not None:
        command.append("--no-build-isolation")
    built = subprocess.run(
        [*command, "-q", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert built.returncode == 0, f"pip wheel failed:\n{built.stdout}\n{built.stderr}"
    wheels = list(out.glob("codex_notebook-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def spec_member(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        found = [
            name
            for name in archive.namelist()
            if name.startswith("codex_notebook-")
            and name.split("/", 1)[0].endswith(".data")
            and name.split("/", 1)[1] == SPEC_IN_WHEEL
        ]
    assert len(found) == 1, f"{wheel.name} does not ship {SPEC_IN_WHEEL} in its .data folder"
    return found[0]


def test_the_wheel_ships_the_kernelspec(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        spec = json.loads(archive.read(spec_member(wheel)))
    assert spec["argv"] == EXPECTED_ARGV
    assert spec["display_name"] == "Python 3 (Codex)"
    assert spec["language"] == "python"
    source = json.loads((REPO / "extension/kernels/codex-python3/kernel.json").read_text())
    assert spec == source


@pytest.fixture
def kernel_from_spec(wheel: Path, tmp_path: Path) -> Iterator[tuple[KernelManager, Any]]:
    kernels = tmp_path / "kernels"
    spec_dir = kernels / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as archive:
        (spec_dir / "kernel.json").write_bytes(archive.read(spec_member(wheel)))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    assert specs.find_kernel_specs() == {KERNEL_NAME: str(spec_dir)}
    assert specs.get_kernel_spec(KERNEL_NAME).display_name == "Python 3 (Codex)"

    env = dict(os.environ)
    env["CODEX_NOTEBOOK_BACKEND"] = "demo"
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
    work = tmp_path / "work"
    work.mkdir()
    km.start_kernel(cwd=str(work), env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def run(kc: Any, code: str) -> str:
    """Execute *code*; return what it printed (stdout). Fails on an error reply."""
    printed: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            printed.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, output_hook=hook, timeout=60)
    content = reply["content"]
    assert content["status"] == "ok", "\n".join(content.get("traceback", [])) or content
    return "".join(printed)


def test_a_kernel_from_the_kernelspec_has_codex_magics_without_load_ext(
    kernel_from_spec: tuple[KernelManager, Any],
) -> None:
    km, kc = kernel_from_spec
    assert km.kernel_spec is not None and km.kernel_spec.argv[-1] == "--ext=codex_notebook"
    shown = run(
        kc,
        "ip = get_ipython()\n"
        "print(ip.find_cell_magic('codex') is not None, ip.find_line_magic('codex') is not None)\n"
        "print('codex_notebook' in ip.extension_manager.loaded)\n",
    )
    assert shown.split() == ["True", "True", "True"]
    assert run(kc, "%codex backend").strip().startswith("backend: demo")
