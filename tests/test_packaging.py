"""The install is what pyproject.toml declares: the locks pin exactly the closure of its
dependencies, every distribution the code imports is declared, and the environment is sound."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = PYPROJECT["project"]["dependencies"]
DEV = PYPROJECT["project"]["optional-dependencies"]["dev"]
OURS = ("training", "orchestration", "common", "features", "validation", "watchlogs", "benchmarks")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def _closure(requirements: list[str]) -> set[str]:
    """Every distribution `requirements` pull in, from the installed packages' metadata."""
    seen: dict[str, set[str]] = {}
    stack = [Requirement(r) for r in requirements]
    while stack:
        req = stack.pop()
        name = canonicalize_name(req.name)
        if name in seen and set(req.extras) <= seen[name]:
            continue
        seen[name] = seen.get(name, set()) | set(req.extras)
        for raw in distribution(req.name).requires or []:
            dep = Requirement(raw)
            extras = seen[name] | {""}
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras):
                dep.marker = None
                stack.append(dep)
    return set(seen)


def test_the_locks_pin_exactly_the_closure_of_the_declared_dependencies():
    runtime_lock = _pins(ROOT / "requirements.lock")
    dev_lock = _pins(ROOT / "requirements-dev.lock")
    assert "-r requirements.lock" in (ROOT / "requirements-dev.lock").read_text()
    runtime = _closure(RUNTIME)
    assert set(runtime_lock) == runtime - {"pip"}
    assert set(dev_lock) == _closure(DEV) - runtime - {"pip"}
    for spec in (*RUNTIME, *DEV):
        req = Requirement(spec)
        version = {**runtime_lock, **dev_lock}[canonicalize_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), (spec, version)
        assert "+" not in version, f"{req.name}=={version}: a local label only installs here"


def test_the_environment_is_the_lock():
    for name, version in {**_pins(ROOT / "requirements.lock"),
                          **_pins(ROOT / "requirements-dev.lock")}.items():  # fmt: skip
        installed = distribution(name).version
        assert installed.split("+")[0] == version, (name, installed, version)


def _imported_top_levels(folders: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names


def _undeclared(modules: set[str], declared: list[str]) -> dict[str, list[str]]:
    allowed = {canonicalize_name(Requirement(r).name) for r in declared}
    owners = packages_distributions()
    out = {}
    for module in sorted(modules):
        if module in sys.stdlib_module_names or module in (*OURS, "tests"):
            continue
        if (ROOT / "tests" / f"{module}.py").exists():  # the suite's own helpers
            continue
        dists = {canonicalize_name(d) for d in owners.get(module, [])}
        if not dists:
            try:
                distribution(module)
                dists = {canonicalize_name(module)}
            except PackageNotFoundError:
                dists = set()
        if not dists & allowed:
            out[module] = sorted(dists) or ["<not installed>"]
    return out


def test_every_imported_distribution_is_declared():
    assert _undeclared(_imported_top_levels(OURS), RUNTIME) == {}
    test_only = _imported_top_levels(("tests",)) - _imported_top_levels(OURS)
    assert _undeclared(test_only, [*RUNTIME, *DEV]) == {}


def test_pip_check_is_clean():
    out = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
