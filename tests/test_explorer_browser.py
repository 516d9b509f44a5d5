"""The log explorer in real headless Chromium (docs/explorer.md), against a real release log
made by the tests: the page verifies it, refuses every forgery built here at run time
(naming the check), finds a release by measurement with its inclusion proof verified in the
page, and shows it revoked once a revocation is logged. Both a plain static file server over
`tlog publish-tiles` output and `tlog serve` (with two witness processes) are exercised."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.explorer_support import (
    DOCS_SCREENSHOT,
    OTHER_MEASUREMENT,
    RELEASE_A,
    RELEASE_A_RELOGGED,
    RELEASE_B,
    RELEASE_B_AGAIN,
    REVOKE_A,
    REVOKE_B,
    SCREENSHOT_ENV,
    Browser,
    ReleaseLog,
    chromium,
    static_server,
)
from tests.support.log_fixtures import LOG_SKEY, ORIGIN, RELEASE_KEY, WITNESS_KEYS, WITNESS_SIGNERS
from tests.support.release_samples import SNP_MEASUREMENT
from tests.support.tlog_net import CLI, free_port
from transparency_log.core.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from transparency_log.core.cosignature import cosignature
from transparency_log.core.note import Signer, append_signatures, generate_keys, parse_note

VERIFIED = "verified: checkpoint {}, 2 of 2 witnesses"
SECTIONS = ("releases", "revocations", "history", "growth", "search")


@pytest.fixture()
def browser(tmp_path: Path) -> Browser:
    return Browser(chromium(), tmp_path / "profile")


@pytest.fixture()
def release_log(tmp_path: Path) -> Iterator[ReleaseLog]:
    log = ReleaseLog(tmp_path)
    yield log
    log.close()


def query(measurement: bytes) -> str:
    """``#q=`` as a user may paste it from `verifier` output: 0x prefix, upper case."""
    return "#q=0x" + measurement.hex().upper()


def assert_refused(browser: Browser, url: str, check: str) -> str:
    page = browser.dom(url)
    assert page.state("status") == "refused", page.status
    assert f"REFUSED ({check})" in page.status, page.status
    assert all(page.hidden(s) for s in SECTIONS), "a refused page shows nothing as verified"
    assert "verified:" not in page.status
    return page.status


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------ a log that verifies


def test_verifies_and_finds_a_release_then_shows_it_revoked(browser: Browser,
                                                             release_log: ReleaseLog) -> None:
    release_log.add(RELEASE_A, RELEASE_B)
    with static_server(release_log.public) as url:
        page = browser.dom(url + query(SNP_MEASUREMENT))
        assert page.status == VERIFIED.format(2)
        assert page.state("search-result") == "found"
        found = page.text_of("search-result")
        assert "Entry 0" in found and "Inclusion proof verified" in found
        assert "Not revoked" in found and "REVOKED" not in found

        release_log.add(REVOKE_A)  # revokes A's statement (SHA-256 of its DSSE payload)
        page = browser.dom(url + query(SNP_MEASUREMENT))
        assert page.status == VERIFIED.format(3)
        assert page.state("search-result") == "revoked"
        assert "REVOKED by entry 2: CVE-2026-0001" in page.text_of("search-result")
        other = browser.dom(url + query(OTHER_MEASUREMENT))
        assert other.state("search-result") == "found", "B is not revoked by A's revocation"
        assert "Entry 1" in other.text_of("search-result")

        # issue 16's attack: A's statement re-logged in a new envelope (one more signature
        # under an unknown key id, so a new entry digest) is still revoked
        release_log.add(RELEASE_A_RELOGGED)
        page = browser.dom(url + query(SNP_MEASUREMENT))
        assert page.status == VERIFIED.format(4)
        assert page.state("search-result") == "revoked"
        assert "Entry 3" in page.text_of("search-result")
        assert "Not revoked" not in page.text_of("search-result")

        # a build revocation refuses B and a re-release of B logged after it
        release_log.add(REVOKE_B)
        release_log.add(RELEASE_B_AGAIN)
        page = browser.dom(url + query(OTHER_MEASUREMENT))
        assert page.status == VERIFIED.format(6)
        assert page.state("search-result") == "revoked"
        result = page.text_of("search-result")
        assert "Entry 1" in result and "Entry 5" in result and "Not revoked" not in result
        assert "REVOKED by entry 4: CVE-2026-0002" in result
        assert "4 releases" in page.text_of("releases")
        assert "2 revocations" in page.text_of("revocations")
        shot = (DOCS_SCREENSHOT if os.environ.get(SCREENSHOT_ENV) == "1"
                else release_log.work / "explorer.png")
        browser.screenshot(url + query(SNP_MEASUREMENT), shot)


def test_a_log_key_with_plus_in_its_base64_verifies(browser: Browser, tmp_path: Path) -> None:
    """The vkey's name and hash end at the first two "+"; base64 may contain more."""
    signer = Signer(generate_keys(ORIGIN, seed=bytes([0x08]) * 32)[0])
    assert "+" in signer.verifier_key().split("+", 2)[2]
    log = ReleaseLog(tmp_path / "plus", signer)
    try:
        log.add(RELEASE_A)
        with static_server(log.public) as url:
            assert browser.dom(url).status == VERIFIED.format(1)
    finally:
        log.close()


def test_search_answers_not_found_and_malformed(browser: Browser,
                                                release_log: ReleaseLog) -> None:
    release_log.add(RELEASE_A)
    with static_server(release_log.public) as url:
        assert browser.dom(url + query(bytes(48))).state("search-result") == "not-found"
        assert browser.dom(url + "#q=abc").state("search-result") == "invalid"


# ------------------------------------------------------------------ tampered tiles


def test_refuses_a_changed_entry_bundle_byte(browser: Browser, release_log: ReleaseLog) -> None:
    release_log.add(RELEASE_A, RELEASE_B, REVOKE_A)
    flip_last_byte(release_log.public / "tile" / "entries" / "000.p" / "3")
    with static_server(release_log.public) as url:
        status = assert_refused(browser, url, "log.tiles")
    assert "level 0" in status


def test_refuses_a_changed_hash_tile(browser: Browser, release_log: ReleaseLog) -> None:
    release_log.add(RELEASE_A, RELEASE_B, REVOKE_A)
    flip_last_byte(release_log.public / "tile" / "0" / "000.p" / "3")
    with static_server(release_log.public) as url:
        assert_refused(browser, url, "log.tiles")


def test_refuses_a_dropped_entry(browser: Browser, release_log: ReleaseLog) -> None:
    """The revocation removed from the entry bundle: the bundle no longer has 3 entries."""
    release_log.add(RELEASE_A, RELEASE_B, REVOKE_A)
    bundle = release_log.public / "tile" / "entries" / "000.p" / "3"
    bundle.write_bytes(bundle.read_bytes()[: -(len(REVOKE_A) + 2)])
    with static_server(release_log.public) as url:
        assert_refused(browser, url, "tiles.entry_bundle")


# ------------------------------------------------------------------ forged checkpoints


def _cosigned(text: bytes, signer: Signer, witnesses: tuple[int, ...] = (0, 1)) -> bytes:
    note = sign_checkpoint(parse_checkpoint(text), signer)
    return append_signatures(note, [cosignature(text, WITNESS_SIGNERS[i], 1_800_000_000)
                                    for i in witnesses])


def test_refuses_a_checkpoint_signed_by_another_key(browser: Browser,
                                                    release_log: ReleaseLog) -> None:
    """Same tree, same witnesses' cosignatures, but the log signature is by another key of
    the same name."""
    note = release_log.add(RELEASE_A, RELEASE_B)
    text, _ = parse_note(note)
    other = Signer(generate_keys(ORIGIN, seed=bytes([0x77]) * 32)[0])
    (release_log.public / "checkpoint").write_bytes(_cosigned(text, other))
    with static_server(release_log.public) as url:
        assert "no signature by the log key" in assert_refused(browser, url, "log.signature")


def test_refuses_a_changed_root(browser: Browser, release_log: ReleaseLog) -> None:
    """A root of a tree the attacker made: re-signed by an unknown key and cosigned by the
    real witnesses; and, kept with the log's real signature line, a signature that fails."""
    note = release_log.add(RELEASE_A, RELEASE_B)
    text, sigs = parse_note(note)
    cp = parse_checkpoint(text)
    forged = Checkpoint(cp.origin, cp.size, bytes(32)).to_text()
    unknown = Signer(generate_keys(ORIGIN, seed=bytes([0x78]) * 32)[0])
    with static_server(release_log.public) as url:
        (release_log.public / "checkpoint").write_bytes(_cosigned(forged, unknown))
        assert "no signature by the log key" in assert_refused(browser, url, "log.signature")
        real_log_sig = [s for s in sigs if s.name == ORIGIN]
        body = forged + b"\n" + b"".join(s.line() for s in real_log_sig)
        (release_log.public / "checkpoint").write_bytes(body)
        assert "does not verify" in assert_refused(browser, url, "log.signature")


def test_refuses_when_the_witness_quorum_is_not_met(browser: Browser,
                                                    release_log: ReleaseLog) -> None:
    release_log.add(RELEASE_A, RELEASE_B, witnesses=(0,))
    with static_server(release_log.public) as url:
        status = assert_refused(browser, url, "log.witness.quorum")
        assert "1 of 2" in status
        # A third witness the policy does not name does not make up for the missing one.
        note = (release_log.public / "checkpoint").read_bytes()
        text, _ = parse_note(note)
        (release_log.public / "checkpoint").write_bytes(
            append_signatures(note, [cosignature(text, WITNESS_SIGNERS[2], 1_800_000_000)]))
        assert_refused(browser, url, "log.witness.quorum")


def test_refuses_a_bad_cosignature(browser: Browser, release_log: ReleaseLog) -> None:
    note = release_log.add(RELEASE_A)
    lines = note.decode().split("\n")
    name = WITNESS_SIGNERS[1].name
    i = next(i for i, line in enumerate(lines) if line.startswith(f"\u2014 {name} "))
    prefix, b64 = lines[i].rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 0x01
    lines[i] = f"{prefix} {base64.b64encode(bytes(raw)).decode()}"
    (release_log.public / "checkpoint").write_text("\n".join(lines))
    with static_server(release_log.public) as url:
        assert_refused(browser, url, "log.witness.signature")


# ------------------------------------------------------------------ history: rollback, fork


def test_refuses_a_rollback_this_browser_saw(browser: Browser, release_log: ReleaseLog) -> None:
    old = release_log.add(RELEASE_A, RELEASE_B)
    release_log.add(REVOKE_A)
    with static_server(release_log.public) as url:
        assert browser.dom(url).status == VERIFIED.format(3)
        (release_log.public / "checkpoint").write_bytes(old)  # hide the revocation
        assert "rollback" in assert_refused(browser, url, "log.consistency")


def test_refuses_a_fork_this_browser_saw(browser: Browser, tmp_path: Path) -> None:
    site = tmp_path / "site"
    logs = [ReleaseLog(tmp_path / "one"), ReleaseLog(tmp_path / "two")]
    try:
        logs[0].add(RELEASE_A, RELEASE_B)
        logs[1].add(RELEASE_A, REVOKE_A, RELEASE_B)  # same key, a different history
        shutil.copytree(logs[0].public, site)
        with static_server(site) as url:
            assert browser.dom(url).status == VERIFIED.format(2)
            shutil.rmtree(site / "tile")
            shutil.copytree(logs[1].public, site, dirs_exist_ok=True)
            assert "fork" in assert_refused(browser, url, "log.consistency")
    finally:
        for log in logs:
            log.close()


# ------------------------------------------------------------------ tlog serve


def test_tlog_serve_serves_a_page_that_verifies(browser: Browser, tmp_path: Path) -> None:
    (tmp_path / "log.key").write_text(LOG_SKEY + "\n")
    db = str(tmp_path / "log.db")
    entries = []
    for i, entry in enumerate([RELEASE_A, RELEASE_B, REVOKE_A]):
        entries.append(tmp_path / f"entry{i}")
        entries[-1].write_bytes(entry)
    run = [sys.executable, "-c", CLI]
    subprocess.run([*run, "init", "--db", db, "--origin", ORIGIN, "--key",
                    str(tmp_path / "log.key")], check=True, capture_output=True)
    subprocess.run([*run, "add", "--db", db, *map(str, entries)], check=True,
                   capture_output=True)
    (tmp_path / "release.pub").write_text(RELEASE_KEY.public.to_text())
    ports = [free_port(), free_port()]
    policy = "".join(f"witness w{i} {WITNESS_KEYS[i][1]} http://127.0.0.1:{p}\n"
                     for i, p in enumerate(ports)) + "group both 2 w0 w1\nquorum both\n"
    (tmp_path / "policy").write_text(policy)
    procs = []
    try:
        for i, port in enumerate(ports):
            (tmp_path / f"w{i}.key").write_text(WITNESS_KEYS[i][0] + "\n")
            procs.append(subprocess.Popen(
                [*run, "witness", "serve", "--db", str(tmp_path / f"w{i}.db"), "--key",
                 str(tmp_path / f"w{i}.key"), "--log", Signer(LOG_SKEY).verifier_key(),
                 "--listen", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL))
        lport = free_port()
        procs.append(subprocess.Popen(
            [*run, "serve", "--db", db, "--listen", f"127.0.0.1:{lport}", "--witness-policy",
             str(tmp_path / "policy"), "--release-key", str(tmp_path / "release.pub"),
             "--interval", "0.1"], stderr=subprocess.DEVNULL))
        url = f"http://127.0.0.1:{lport}/"
        _wait_for_cosigned_checkpoint(url, size=3)
        page = browser.dom(url + query(SNP_MEASUREMENT))
        assert page.status == VERIFIED.format(3)
        assert page.state("search-result") == "revoked"
        assert "(verified)" in page.text_of("releases")  # DSSE signature by the release key
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def _wait_for_cosigned_checkpoint(url: str, size: int) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            r = requests.get(url + "checkpoint", timeout=2)
            if r.ok and r.text.split("\n")[1] == str(size) and r.text.count("\u2014 ") == 3:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("tlog serve published no cosigned checkpoint")


def test_a_log_past_one_tile_verifies_and_a_level_1_tile_is_checked(
        browser: Browser, release_log: ReleaseLog) -> None:
    """600 entries: two full level-0 tiles, a partial one, a level-1 tile of width 2."""
    opaque = [f"opaque entry {i}".encode() for i in range(597)]
    release_log.add(*opaque[:300], RELEASE_A, *opaque[300:], RELEASE_B, REVOKE_A)
    with static_server(release_log.public) as url:
        page = browser.dom(url + query(OTHER_MEASUREMENT))
        assert page.status == VERIFIED.format(600)
        assert page.state("search-result") == "found"
        assert "Entry 598" in page.text_of("search-result")
        assert "597 other entries" in page.text_of("others")
        flip_last_byte(release_log.public / "tile" / "1" / "000.p" / "2")
        assert "level 1" in assert_refused(browser, url, "log.tiles")
