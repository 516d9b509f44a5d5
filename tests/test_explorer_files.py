"""The log explorer's files: `tlog publish-tiles` writes them beside the tiles (or not, with
--no-explorer), `tlog serve`'s app serves exactly those names at / with a strict CSP, and
the configuration refuses what the Python side would refuse (docs/explorer.md)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.explorer_support import WITNESS_POLICY
from tests.support.log_fixtures import LOG_SIGNER, LOG_SKEY, ORIGIN, RELEASE_KEY
from transparency_log.cli.main import main
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.common.errors import TrustConfigError
from transparency_log.serve.explorer import (
    CONTENT_SECURITY_POLICY,
    explorer_assets,
    explorer_config,
)
from transparency_log.serve.server import Submitters, create_app

PAGE = ["index.html", "explorer.js", "explorer.css", "explorer.json"]


def _log(tmp_path: Path) -> str:
    (tmp_path / "log.key").write_text(LOG_SKEY + "\n")
    (tmp_path / "e").write_bytes(b"an opaque entry")
    db = str(tmp_path / "log.db")
    runner = CliRunner()
    for args in (["init", "--db", db, "--origin", ORIGIN, "--key", str(tmp_path / "log.key")],
                 ["add", "--db", db, str(tmp_path / "e")], ["checkpoint", "--db", db]):
        r = runner.invoke(main, args)
        assert r.exit_code == 0, r.output
    return db


def test_publish_tiles_writes_the_page_and_its_config(tmp_path: Path) -> None:
    db = _log(tmp_path)
    (tmp_path / "policy").write_text(WITNESS_POLICY)
    (tmp_path / "release.pub").write_text(RELEASE_KEY.public.to_text())
    r = CliRunner().invoke(main, ["publish-tiles", "--db", db, str(tmp_path / "out"),
                                  "--witness-policy", str(tmp_path / "policy"),
                                  "--release-key", str(tmp_path / "release.pub")])
    assert r.exit_code == 0, r.output
    assert all((tmp_path / "out" / name).is_file() for name in PAGE)
    config = json.loads((tmp_path / "out" / "explorer.json").read_text())
    assert config == {"version": 1, "origin": ORIGIN, "log_vkey": LOG_SIGNER.verifier_key(),
                      "witness_policy": WITNESS_POLICY,
                      "release_keys": [RELEASE_KEY.public.to_text().strip()]}


def test_publish_tiles_no_explorer(tmp_path: Path) -> None:
    db = _log(tmp_path)
    r = CliRunner().invoke(main, ["publish-tiles", "--db", db, str(tmp_path / "out"),
                                  "--no-explorer"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "checkpoint").is_file()
    assert not any((tmp_path / "out" / name).exists() for name in PAGE)


def test_publish_tiles_refuses_a_bad_witness_policy(tmp_path: Path) -> None:
    db = _log(tmp_path)
    (tmp_path / "policy").write_text("quorum nobody\n")
    r = CliRunner().invoke(main, ["publish-tiles", "--db", db, str(tmp_path / "out"),
                                  "--witness-policy", str(tmp_path / "policy")])
    assert r.exit_code == 4 and "log.policy" in r.output
    assert not (tmp_path / "out" / "checkpoint").exists()


def test_config_refuses_a_key_of_another_origin() -> None:
    with pytest.raises(TrustConfigError) as err:
        explorer_config("other.example/log", LOG_SIGNER.verifier_key())
    assert err.value.check == "log.config"
    with pytest.raises(TrustConfigError):
        explorer_config(ORIGIN, LOG_SIGNER.verifier_key(), release_keys=["not a key"])


class _NoLog:
    def add_entries(self, entries: list[bytes]) -> list[int]:
        raise AssertionError

    def read(self, path: str) -> bytes | None:
        return b"tile" if path == "tile/0/000" else None

    def proof(self, index: int) -> bytes | None:
        return None


def _get(port: int, path: str) -> tuple[int, bytes, http.client.HTTPMessage]:
    """GET with the path sent exactly as written (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read(), r.headers
    finally:
        conn.close()


def test_server_serves_exactly_the_page_files() -> None:
    assets = explorer_assets(explorer_config(ORIGIN, LOG_SIGNER.verifier_key()))
    app = create_app(_NoLog(), submitters=Submitters(), explorer=assets)
    with serve_in_thread(app) as (_, port):
        for path, name in [("/", "index.html"), ("/index.html", "index.html"),
                           ("/explorer.js", "explorer.js"), ("/explorer.css", "explorer.css"),
                           ("/explorer.json", "explorer.json")]:
            status, body, headers = _get(port, path)
            assert status == 200 and body == assets[name][0], path
            assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["content-type"].startswith(assets[name][1].split(";")[0])
        assert _get(port, "/tile/0/000")[1] == b"tile"
        for path in ["/static/explorer.js", "/explorer.js/", "/%65xplorer.js",
                     "/../explorer.js", "/__init__.py", "/explorer.json.tmp", "//explorer.js"]:
            assert _get(port, path)[0] == 404, path
    with serve_in_thread(create_app(_NoLog(), submitters=Submitters())) as (_, port):
        assert _get(port, "/")[0] == 404
