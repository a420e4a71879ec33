"""The committed, prebuilt frontend extension matches its sources and is what gets installed.

No node needed: scripts/build_labextension.py records a digest of the sources at build time,
and these tests recompute it. (Rebuilding from the lockfile reproduces the output byte for
byte; see docs/labextension.md.)
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "extension" / "labextension"
OUTPUT = REPO / "extension" / "labextensions" / "codex-notebook"
INSTALLED = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "codex-notebook"


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_labextension", REPO / "scripts" / "build_labextension.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_build_script()


def copy_sources(target: Path) -> Path:
    """The sources without node_modules/ and lib/ (what the digest covers, and more)."""
    shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("node_modules", "lib"))
    return target


def test_the_committed_build_matches_its_sources() -> None:
    assert build.check_output(OUTPUT, SOURCE) == []


def test_the_check_command_passes() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_labextension.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "matches its sources" in done.stdout


def test_every_version_statement_agrees() -> None:
    stated = build.versions(REPO)
    assert len(set(stated.values())) == 1, stated
    built = json.loads((OUTPUT / "package.json").read_text())
    assert built["name"] == "codex-notebook"
    assert built["version"] == stated["pyproject.toml"]


@pytest.mark.parametrize(
    "name", ["src/index.ts", "style/index.css", "package-lock.json", "rspack.config.js"]
)
def test_editing_any_source_changes_the_digest(tmp_path: Path, name: str) -> None:
    sources = copy_sources(tmp_path / "labextension")
    before = build.sources_digest(sources)
    with (sources / name).open("a", encoding="utf-8") as file:
        file.write("\n")
    assert build.sources_digest(sources) != before


def test_a_new_source_file_changes_the_digest(tmp_path: Path) -> None:
    sources = copy_sources(tmp_path / "labextension")
    before = build.sources_digest(sources)
    (sources / "src" / "extra.ts").write_text("export const EXTRA = 1;\n")
    assert build.sources_digest(sources) != before


def test_a_stale_build_is_reported_with_what_to_do(tmp_path: Path) -> None:
    sources = copy_sources(tmp_path / "labextension")
    (sources / "src" / "contract.ts").write_text("// edited\n", encoding="utf-8")
    problems = build.check_output(OUTPUT, sources)
    assert len(problems) == 1
    assert "run scripts/build_labextension.py" in problems[0]


def test_a_missing_or_extra_output_file_is_reported(tmp_path: Path) -> None:
    output = tmp_path / "codex-notebook"
    shutil.copytree(OUTPUT, output)
    (output / "static" / "stray.js").write_text("1\n")
    chunk = next(p for p in (output / "static").glob("*.js") if p.name[0].isdigit())
    chunk.unlink()
    (problem,) = build.check_output(output, SOURCE)
    assert "stray.js" in problem and chunk.name in problem


def test_the_entry_point_named_in_package_json_exists() -> None:
    built = json.loads((OUTPUT / "package.json").read_text())
    load = built["jupyterlab"]["_build"]["load"]
    assert re.fullmatch(r"static/remoteEntry\.[0-9a-f]+\.js", load)
    assert (OUTPUT / load).is_file()
    assert built["jupyterlab"]["_build"]["extension"] == "./extension"


def test_the_build_is_small_and_links_against_jupyterlab() -> None:
    """JupyterLab's packages are shared, not bundled: a few kilobytes of our own code."""
    scripts = list((OUTPUT / "static").glob("*.js"))
    assert sum(p.stat().st_size for p in scripts) < 64_000
    entry = next(p for p in scripts if p.name.startswith("remoteEntry."))
    text = entry.read_text()
    for package in ("@jupyterlab/notebook", "@jupyterlab/apputils"):
        assert f'"{package}"' in text


def test_the_stylesheet_is_built_in_and_loaded_by_jupyterlab() -> None:
    built = json.loads((OUTPUT / "package.json").read_text())
    assert built["jupyterlab"]["_build"]["style"] == "./style"
    rule = ".cxn-proposals-host > .cxn-proposals {"
    assert rule in (SOURCE / "style" / "index.css").read_text()
    assert any(rule in p.read_text() for p in (OUTPUT / "static").glob("*.js"))


# Declarations that set a colour; each must take it from the theme (--jp-* variables).
COLOUR = re.compile(
    r"^\s*(color|background(?:-color)?|border(?:-color)?|outline):\s*([^;]+);", re.M
)


def test_the_stylesheet_takes_every_colour_from_the_theme() -> None:
    """Light, dark or any other JupyterLab theme: no literal colour in the bar's CSS."""
    css = (SOURCE / "style" / "index.css").read_text()
    found = COLOUR.findall(css)
    assert len(found) >= 10
    for prop, value in found:
        assert "var(--jp-" in value, f"{prop}: {value} does not come from the theme"
        assert not re.search(r"#[0-9a-f]{3,8}\b|rgba?\(|\b(white|black)\b", value, re.I), value


def test_the_wheel_installs_it_where_jupyter_looks() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert (
        '"extension/labextensions/codex-notebook" = "share/jupyter/labextensions/codex-notebook"'
        in pyproject
    )
    assert (
        '"extension/labextension/install.json" = '
        '"share/jupyter/labextensions/codex-notebook/install.json"' in pyproject
    )


def test_this_environment_has_the_committed_build_installed() -> None:
    """`make` installs the package editable; hatch copies shared-data, so a rebuilt extension
    needs a reinstall (the Makefile's install targets depend on the built files)."""
    if not (INSTALLED / "package.json").is_file():
        pytest.fail(f"{INSTALLED} is missing: run `make .venv/.installed-test` (pip install -e .)")
    for path in OUTPUT.rglob("*"):
        if path.is_file():
            installed = INSTALLED / path.relative_to(OUTPUT)
            assert installed.is_file(), f"{installed} is missing: reinstall (pip install -e .)"
            assert installed.read_bytes() == path.read_bytes(), f"{installed} is stale: reinstall"
    assert json.loads((INSTALLED / "install.json").read_text())["packageName"] == "codex-notebook"


def test_jupyterlab_lists_the_extension_as_enabled() -> None:
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (the demo/browser extra)")
    done = subprocess.run(
        [sys.executable, "-m", "jupyterlab.labextensions", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    listing = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    assert re.search(r"codex-notebook v\S+ enabled OK \(python, codex-notebook\)", listing), listing
