"""Applied migrations never change: sql/migrations/MANIFEST.sha256 holds each file's sha256.

yoyo knows a migration by its file name only. An edited migration is not applied again to a
database that already ran it (so it and a fresh install silently differ); a renamed or
moved one is applied a second time. Hence every file under sql/migrations is listed with
its checksum, and a new migration is appended with `make migrations-manifest`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "sql" / "migrations"
MANIFEST = MIGRATIONS / "MANIFEST.sha256"
SCRIPT = ROOT / "scripts" / "migrations-manifest"
HOW_TO_ADD = ("once the migration is final, append it with `make migrations-manifest` "
              "(scripts/migrations-manifest --add: it adds new files only and never rewrites "
              "an entry)")


def _entries() -> list[tuple[str, str]]:
    entries = []
    for number, line in enumerate(MANIFEST.read_text(encoding="utf-8").splitlines(), 1):
        checksum, sep, path = line.partition("  ")
        assert sep and len(checksum) == 64 and path, \
            f"{MANIFEST.relative_to(ROOT)}:{number} is not `<sha256>  <path>`: {line!r}"
        entries.append((path, checksum))
    return entries


def test_the_manifest_lists_each_file_once():
    paths = [path for path, _ in _entries()]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    assert not repeated, f"listed more than once in {MANIFEST.name}: {', '.join(repeated)}"


def test_every_listed_migration_is_there_byte_for_byte():
    broken = []
    for path, checksum in _entries():
        file = MIGRATIONS / path
        if not file.is_file():
            broken.append(f"sql/migrations/{path} is missing (renamed, moved or deleted?): "
                          "an applied migration must keep its name and place")
            continue
        actual = hashlib.sha256(file.read_bytes()).hexdigest()
        if actual != checksum:
            broken.append(f"sql/migrations/{path} was edited (sha256 {actual}, manifest "
                          f"{checksum}): applied migrations are immutable; restore it "
                          "(git checkout) and put the change in a new migration")
    if broken:
        pytest.fail("\n".join(broken), pytrace=False)


def test_every_migration_file_is_listed():
    listed = {path for path, _ in _entries()}
    on_disk = sorted(p.relative_to(MIGRATIONS).as_posix() for p in MIGRATIONS.rglob("*")
                     if p.is_file() and p != MANIFEST and "__pycache__" not in p.parts)
    unlisted = [path for path in on_disk if path not in listed]
    if unlisted:
        pytest.fail("\n".join(f"sql/migrations/{path} is not in sql/migrations/MANIFEST.sha256; "
                              f"{HOW_TO_ADD}" for path in unlisted), pytrace=False)


def _script(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--dir", str(folder), *args],
                          capture_output=True, text=True)


def test_the_script_appends_new_files_and_never_rewrites_an_entry(tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)  # a copy to play with, its own manifest built anew
    manifest = folder / MANIFEST.name
    manifest.unlink()
    assert _script(folder, "--add").returncode == 0
    before = manifest.read_bytes()
    assert _script(folder).returncode == 0

    new = folder / "caggs" / "0999_new.sql"
    new.write_text("SELECT 1;\n")
    check = _script(folder)
    assert check.returncode == 1 and "caggs/0999_new.sql: not in" in check.stderr
    added = _script(folder, "--add")
    assert added.returncode == 0, added.stderr
    digest = hashlib.sha256(new.read_bytes()).hexdigest()
    assert manifest.read_bytes() == before + f"{digest}  caggs/0999_new.sql\n".encode()
    assert _script(folder).returncode == 0

    # An edited migration: --add refuses and leaves the manifest alone.
    listed = manifest.read_bytes()
    edited = folder / "core" / "0001_core.sql"
    edited.write_bytes(edited.read_bytes() + b"-- later edit\n")
    (folder / "core" / "0998_other.sql").write_text("SELECT 2;\n")
    refused = _script(folder, "--add")
    assert refused.returncode == 1
    assert "core/0001_core.sql: its bytes changed" in refused.stderr
    assert manifest.read_bytes() == listed

    # A renamed one: missing under its listed name.
    edited.write_bytes((MIGRATIONS / "core" / "0001_core.sql").read_bytes())
    (folder / "core" / "0002_idempotency.sql").rename(folder / "core" / "0002_renamed.sql")
    refused = _script(folder, "--add")
    assert refused.returncode == 1 and "core/0002_idempotency.sql: listed" in refused.stderr
    assert manifest.read_bytes() == listed
