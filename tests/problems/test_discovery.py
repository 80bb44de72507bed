"""Problems are found in all three places: built-in folders, paths, and installed entry points."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evolve.cli import app
from evolve.problem.discovery import (
    BUILTIN_DIR,
    ENTRY_POINT_GROUP,
    find_problem,
    list_problems,
    scan_problems,
)
from evolve.problem.scaffold import write_skeleton
from evolve.problem.spec import ProblemError, load_problem


def _set_toml_line(root: Path, old: str, new: str) -> None:
    toml = root / "problem.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new, 1))


@pytest.fixture
def builtin_dir(tmp_path):
    """A stand-in for problems/: two good problems, a broken one and a helper folder."""
    base = tmp_path / "builtin"
    write_skeleton("alpha", base)
    write_skeleton("needs_gpu_lib", base)
    _set_toml_line(base / "needs_gpu_lib", "requires = []",
                   'requires = ["json", "surely_not_installed_mod_4711"]')
    _set_toml_line(base / "needs_gpu_lib", 'gpu = "none"', 'gpu = "required"')
    write_skeleton("broken", base)
    _set_toml_line(base / "broken", 'language = "python"', 'language = "python"\ncolour = "red"')
    (base / "_helpers").mkdir()
    (base / "_helpers" / "problem.toml").write_text("not a problem")
    return base


@pytest.fixture
def installed_package(tmp_path, monkeypatch):
    """A real installed distribution: a package and its dist-info with entry points, on sys.path."""
    site = tmp_path / "site"
    pkg = site / "evolve_extra_problems"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""\
        from pathlib import Path

        HERE = Path(__file__).parent
        BETA_FOLDER = HERE / "beta_problem"


        def gamma_folder():
            return "gamma_problem"  # relative: resolved against this package
    """))
    write_skeleton("alpha_problem", pkg)
    (pkg / "alpha_problem" / "__init__.py").write_text("")
    write_skeleton("beta_problem", pkg)
    write_skeleton("gamma_problem", pkg)
    dist = site / "evolve_extra_problems-1.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: evolve-extra-problems\nVersion: 1.2.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(f"""\
        [{ENTRY_POINT_GROUP}]
        ext_alpha = evolve_extra_problems.alpha_problem
        ext_beta = evolve_extra_problems:BETA_FOLDER
        ext_gamma = evolve_extra_problems:gamma_folder
        ext_missing = evolve_extra_problems.not_there
    """))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield pkg
    # Forget the imported test package so no other test sees it (sys.path is undone by monkeypatch).
    for name in [m for m in sys.modules if m.startswith("evolve_extra_problems")]:
        del sys.modules[name]


def test_builtin_folders_are_found_and_broken_ones_reported(builtin_dir):
    entries = {e.name: e for e in scan_problems(builtin_dir=builtin_dir)}
    assert {"alpha", "needs_gpu_lib", "broken"} <= set(entries)
    assert "_helpers" not in entries
    assert entries["alpha"].source == "builtin" and entries["alpha"].usable
    broken = entries["broken"]
    assert broken.spec is None and not broken.usable
    assert str(builtin_dir / "broken" / "problem.toml") in broken.reason
    assert "unknown key 'problem.colour'" in broken.reason and "'broken'" in broken.reason

    spec = find_problem("alpha", builtin_dir=builtin_dir)
    assert spec.source == "builtin" and spec.root == builtin_dir / "alpha"
    assert [s.name for s in list_problems(builtin_dir=builtin_dir)
            if s.source == "builtin"] == ["alpha", "needs_gpu_lib"]


def test_missing_requirements_leave_a_problem_listed_but_unusable(builtin_dir):
    entry = {e.name: e for e in scan_problems(builtin_dir=builtin_dir)}["needs_gpu_lib"]
    assert entry.spec is not None and entry.spec.gpu.value == "required"
    assert not entry.usable
    assert entry.spec.missing_requirements() == ["surely_not_installed_mod_4711"]
    assert "surely_not_installed_mod_4711" in entry.reason and "json" not in entry.reason


def test_a_folder_path_is_a_problem(tmp_path, monkeypatch):
    spec = write_skeleton("here", tmp_path)
    assert find_problem(str(spec.root)).source == "path"
    assert find_problem(spec.root / "problem.toml").root == spec.root
    monkeypatch.chdir(tmp_path)
    assert find_problem("./here").root == spec.root
    assert find_problem("here").source == "path"  # a folder in the working directory
    with pytest.raises(ProblemError, match="does not exist"):
        find_problem(str(tmp_path / "nowhere"))


def test_unknown_names_say_where_was_looked(builtin_dir):
    with pytest.raises(ProblemError) as err:
        find_problem("no_such_problem", builtin_dir=builtin_dir)
    message = str(err.value)
    assert "no problem named 'no_such_problem'" in message
    assert ENTRY_POINT_GROUP in message and "alpha" in message
    assert "evolve problems list" in message


def test_installed_entry_points_are_discovered(installed_package):
    dist = importlib.metadata.distribution("evolve-extra-problems")
    assert dist.version == "1.2.0"
    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert {"ext_alpha", "ext_beta", "ext_gamma", "ext_missing"} <= names

    alpha = find_problem("ext_alpha")
    assert alpha.source == "entry-point" and alpha.root == installed_package / "alpha_problem"
    assert alpha.name == "alpha_problem"
    assert find_problem("ext_beta").root == installed_package / "beta_problem"
    assert find_problem("ext_gamma").root == installed_package / "gamma_problem"

    entries = {e.name: e for e in scan_problems()}
    assert entries["ext_alpha"].usable and entries["ext_alpha"].source == "entry-point"
    missing = entries["ext_missing"]
    assert not missing.usable and missing.spec is None
    assert "ext_missing" in missing.reason and "evolve-extra-problems" in missing.reason
    with pytest.raises(ProblemError, match="not installed"):
        find_problem("ext_missing")


def test_cli_list_shows_all_sources(installed_package):
    runner = CliRunner()
    result = runner.invoke(app, ["problems", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "GPU", "DESCRIPTION", "STATUS"]
    alpha = next(line for line in lines if line.startswith("ext_alpha "))
    assert "entry-point" in alpha and alpha.rstrip().endswith("ok")
    assert "\x1b[" not in result.output  # piped: plain text

    listed = json.loads(runner.invoke(app, ["problems", "list", "--json"]).output)
    by_name = {p["name"]: p for p in listed}
    assert by_name["ext_alpha"]["gpu"] == "none"
    assert by_name["ext_alpha"]["stages"] == ["quick", "full"]
    assert by_name["ext_missing"]["usable"] is False and by_name["ext_missing"]["reason"]


def test_every_builtin_problem_in_the_repository_validates():
    entries = [e for e in scan_problems() if e.source == "builtin"]
    for entry in entries:
        assert entry.spec is not None, entry.reason
        assert entry.spec.root.parent == BUILTIN_DIR
        assert load_problem(entry.spec.root, source="builtin") == entry.spec
