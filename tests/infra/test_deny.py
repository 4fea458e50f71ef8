"""deny.toml's advisory check can fail: against an advisory database of our own, served on loopback by
`git daemon` (RustSec's is on GitHub, which these machines cannot reach), an advisory on a crate the
bootstraps use fails the check, and an `ignore` entry with its reason is what addresses it."""
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT

ADVISORY_ID = "RUSTSEC-2099-0001"


def locked_version(crate):
    lock = (ROOT / "Cargo.lock").read_text(encoding="utf-8")
    match = re.search(rf'name = "{crate}"\nversion = "([^"]+)"', lock)
    assert match, f"{crate} is not in Cargo.lock"
    return match.group(1)


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
                   cwd=cwd, check=True, capture_output=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def advisory_db(tmp_path):
    """A one-advisory database on serde_json, whose every release is 'affected', as git://localhost."""
    repo = tmp_path / "advisory-db"
    crate_dir = repo / "crates" / "serde_json"
    crate_dir.mkdir(parents=True)
    (crate_dir / f"{ADVISORY_ID}.md").write_text(f"""```toml
[advisory]
id = "{ADVISORY_ID}"
package = "serde_json"
date = "2099-01-01"
url = "https://example.invalid/{ADVISORY_ID}"
categories = ["denial-of-service"]

[versions]
patched = [">= 99.0.0"]
```

# A made-up advisory on every serde_json release

The test's proof that the advisory check fails on an unaddressed advisory.
""", encoding="utf-8")
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "advisory", cwd=repo)
    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", f"--base-path={tmp_path}", "--export-all", "--reuseaddr",
                               "--listen=127.0.0.1", f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        assert time.monotonic() < deadline, "git daemon did not listen"
        time.sleep(0.05)
    yield f"git://localhost:{port}/advisory-db"
    daemon.terminate()
    daemon.wait()


def check_advisories(tmp_path, db_url, ignore="[]"):
    """deny.toml as committed, its advisories pointed at db_url, with `ignore` replaced."""
    config = (ROOT / "deny.toml").read_text(encoding="utf-8")
    assert "\nignore = []\n" in config, "deny.toml's advisory ignore list changed: update this test"
    config = config.replace("\nignore = []\n", f'\nignore = {ignore}\ndb-urls = ["{db_url}"]\n'
                                               f'db-path = "{tmp_path / "dbs"}"\n')
    (tmp_path / "deny.toml").write_text(config, encoding="utf-8")
    return subprocess.run(["cargo-deny", "--manifest-path", str(ROOT / "Cargo.toml"), "--config",
                           str(tmp_path / "deny.toml"), "check", "advisories"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)


def test_an_advisory_on_a_shipped_crate_fails_the_check(tmp_path, advisory_db):
    result = check_advisories(tmp_path, advisory_db)
    assert result.returncode != 0, result.stdout
    assert f"serde_json {locked_version('serde_json')}" in result.stdout, result.stdout
    assert "advisories FAILED" in result.stdout, result.stdout


def test_an_advisory_ignored_with_its_reason_passes(tmp_path, advisory_db):
    ignore = f'[{{ id = "{ADVISORY_ID}", reason = "made up by the test" }}]'
    result = check_advisories(tmp_path, advisory_db, ignore)
    assert result.returncode == 0, result.stdout
    assert "advisories ok" in result.stdout, result.stdout
