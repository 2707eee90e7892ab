"""The npm package of the browser client: the very files the service serves, importable by name.

npm never reaches a registry here: every call is --offline, with a cache and a user config of
the test's own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "service" / "static"
MANIFEST = json.loads((PACKAGE_DIR / "package.json").read_text())
NAME = MANIFEST["name"]
SHIPPED = {"package.json", "tracking.js", "tracking.d.ts"}
NPM_FLAGS = ["--offline", "--no-audit", "--no-fund", "--json"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is missing: install the Debian package `{name}`")
    return path


@pytest.fixture(scope="module")
def npm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("npm-home")
    (home / "npmrc").write_text("")
    return {**os.environ, "npm_config_cache": str(home / "cache"),
            "npm_config_userconfig": str(home / "npmrc"), "npm_config_update_notifier": "false"}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    run = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory,
           npm_env: dict[str, str]) -> Iterator[tuple[dict[str, Any], Path]]:
    """`npm pack` of service/static: npm's report and the tarball."""
    out = tmp_path_factory.mktemp("pack")
    report = json.loads(_run([_tool("npm"), "pack", *NPM_FLAGS, "--pack-destination", str(out)],
                             PACKAGE_DIR, npm_env))[0]
    yield report, out / report["filename"]


def test_package_version_is_the_service_version():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert MANIFEST["version"] == pyproject["project"]["version"]
    assert MANIFEST["license"] == pyproject["project"]["license"]


def test_package_points_at_the_module_and_its_types():
    assert MANIFEST["type"] == "module"
    assert MANIFEST["exports"] == {".": {"types": "./tracking.d.ts", "default": "./tracking.js"}}
    assert MANIFEST["types"] == "./tracking.d.ts"


def test_npm_pack_ships_exactly_the_served_module_and_its_types(packed, client):
    report, tarball = packed
    assert report["name"] == NAME and report["version"] == MANIFEST["version"]
    assert {f["path"] for f in report["files"]} == SHIPPED
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {f"package/{name}" for name in SHIPPED}
        shipped = {name: tar.extractfile(members[f"package/{name}"]).read()  # type: ignore[union-attr]
                   for name in SHIPPED}
    for name in ("tracking.js", "tracking.d.ts"):
        served = client.get(f"/static/{name}")
        assert served.status_code == 200
        assert shipped[name] == served.content, f"the packed {name} differs from the served one"
    # served too: nothing in it is not public already, and it tells which version a service runs
    assert client.get("/static/package.json").json() == json.loads(shipped["package.json"])


def test_a_site_installs_the_tarball_and_imports_the_module_by_name(packed, npm_env, tmp_path):
    _, tarball = packed
    site = tmp_path / "site"
    site.mkdir()
    (site / "package.json").write_text('{"name": "site", "private": true, "type": "module"}')
    _run([_tool("npm"), "install", *NPM_FLAGS, "--no-package-lock", str(tarball)], site, npm_env)

    script = (f"const m = await import({NAME!r}); console.log(JSON.stringify({{"
              f"resolved: import.meta.resolve({NAME!r}), exports: Object.keys(m),"
              " functions: Object.keys(m).filter((k) => typeof m[k] === 'function') }));")
    seen = json.loads(_run([_tool("node"), "--input-type=module", "-e", script], site, npm_env))

    installed = site / "node_modules" / NAME
    assert seen["resolved"] == (installed / "tracking.js").as_uri()  # through "exports"
    declared = re.findall(r"^export (?:const|function) (\w+)",
                          (installed / "tracking.d.ts").read_text(), re.MULTILINE)
    assert sorted(seen["exports"]) == sorted(declared)  # the types describe every export
    assert {"configure", "trackProjectView", "trackProjectClick", "observeImpressions",
            "flush", "createTracker"} <= set(seen["functions"])
