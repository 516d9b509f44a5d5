"""Helpers for the log explorer's browser tests: a real release log made with the project's
own code (SQLite log, release and revocation entries signed as `attest publish` / `attest
revoke` sign them, checkpoints cosigned by the witnesses of tests/log_fixtures), published
as a static tile tree with the page, served on 127.0.0.1, and read by headless Chromium.

Chromium is Debian's system package (``.ci/run`` installs it); nothing is downloaded. With
``ATTESTLOG_REQUIRE_BROWSER=1`` (set by CI) a missing browser fails the tests instead of
skipping them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from attest.release.dsse import parse_entry, sign_statement
from attest.release.measurements import Measurements, SnpMeasurement
from attest.release.statement import Revocation
from tests.support.log_fixtures import (
    LOG_SIGNER,
    ORIGIN,
    RELEASE_KEY,
    WITNESS_SIGNERS,
    WITNESS_VKEYS,
    relogged_variant,
)
from tests.support.release_samples import SNP_MEASUREMENT, sample_release
from tests.support.system_tools import missing_system_tool
from transparency_log.cli.log import META_KEY_FILE, META_VKEY
from transparency_log.core.checkpoint import parse_checkpoint
from transparency_log.core.cosignature import cosignature
from transparency_log.core.note import Signer, append_signatures, parse_note
from transparency_log.log.lifecycle import Log
from transparency_log.log.publish import publish_tiles
from transparency_log.log.storage.sqlite import SqliteStorage
from transparency_log.serve.explorer import explorer_config, write_explorer

REQUIRE_ENV = "ATTESTLOG_REQUIRE_BROWSER"
SCREENSHOT_ENV = "ATTESTLOG_UPDATE_SCREENSHOT"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "explorer.png"
WITNESS_POLICY = (f"witness w0 {WITNESS_VKEYS[0]}\nwitness w1 {WITNESS_VKEYS[1]}\n"
                  "group both 2 w0 w1\nquorum both\n")
OTHER_MEASUREMENT = bytes(range(100, 148))
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
COSIGN_TS = int(NOW.timestamp())


def chromium() -> str:
    """The system Chromium, or skip (fail under ``ATTESTLOG_REQUIRE_BROWSER=1``)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing_system_tool("chromium is not installed", REQUIRE_ENV,
                            "install Debian's chromium package")
    return path


@dataclasses.dataclass
class Browser:
    """Headless Chromium with one profile (so localStorage persists between loads)."""

    binary: str
    profile: Path

    def _run(self, url: str, *extra: str) -> str:
        argv = [self.binary, "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--disable-sync",
                f"--user-data-dir={self.profile}", "--virtual-time-budget=20000", *extra, url]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    def dom(self, url: str) -> Page:
        return Page(self._run(url, "--dump-dom"))

    def screenshot(self, url: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._run(url, f"--screenshot={path}", "--window-size=1280,1900",
                  "--hide-scrollbars")
        assert path.stat().st_size > 10_000


class Page:
    """The DOM Chromium dumped after the page's scripts ran."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _element(self, element_id: str) -> tuple[str, str]:
        m = re.search(rf'<(\w+) id="{element_id}"([^>]*)>(.*?)</\1>', self.text, re.S)
        assert m, f"no #{element_id} in the page"
        return m.group(2), m.group(3)

    def state(self, element_id: str) -> str:
        attrs, _ = self._element(element_id)
        m = re.search(r'data-state="([^"]*)"', attrs)
        assert m, f"#{element_id} has no data-state"
        return m.group(1)

    def text_of(self, element_id: str) -> str:
        _, inner = self._element(element_id)
        return html.unescape(re.sub(r"<[^>]+>", " ", inner))

    @property
    def status(self) -> str:
        return " ".join(self.text_of("status").split())

    def hidden(self, section: str) -> bool:
        m = re.search(rf'<section id="{section}"([^>]*)>', self.text)
        assert m, section
        return "hidden" in m.group(1)


def release_entry(measurement: bytes, n: int) -> bytes:
    """A release entry as `attest publish` signs it, listing ``measurement`` (SNP)."""
    base = sample_release()
    snp = (SnpMeasurement(4, "EPYC-v4", "qemu", measurement),)
    m = Measurements(snp, base.measurements.tdx, base.measurements.gpu)
    release = dataclasses.replace(base, commit=f"{n + 1:040x}", measurements=m)
    return sign_statement(release, [RELEASE_KEY]).encode()


def revoke_entry(digest: bytes, reason: str) -> bytes:
    """A release revocation as `attest revoke RELEASE` signs it, naming the statement digest
    ``digest`` (docs/formats.md, revocation/v2)."""
    return sign_statement(Revocation.of_statement(digest, reason), [RELEASE_KEY]).encode()


def revoke_build_entry(measurement: bytes, reason: str) -> bytes:
    """A build revocation as `attest revoke --measurement` signs it."""
    return sign_statement(Revocation.of_measurement(measurement, reason), [RELEASE_KEY]).encode()


def payload_digest(entry: bytes) -> bytes:
    """SHA-256 of the DSSE payload: the statement digest (issue 16's revocation target)."""
    return hashlib.sha256(parse_entry(entry).payload).digest()


RELEASE_A = release_entry(SNP_MEASUREMENT, 0)
RELEASE_B = release_entry(OTHER_MEASUREMENT, 1)
RELEASE_A_RELOGGED = relogged_variant(RELEASE_A)  # the same statement, another entry digest
RELEASE_B_AGAIN = release_entry(OTHER_MEASUREMENT, 2)  # a re-release of build B
REVOKE_A = revoke_entry(payload_digest(RELEASE_A), "CVE-2026-0001 in the guest kernel")
REVOKE_B = revoke_build_entry(OTHER_MEASUREMENT, "CVE-2026-0002 in the inference server")


class ReleaseLog:
    """A SQLite release log whose static tile tree (with the explorer) lives in ``public``."""

    def __init__(self, work: Path, signer: Signer = LOG_SIGNER) -> None:
        self.work = work
        self.signer = signer
        self.public = work / "public"
        work.mkdir(parents=True, exist_ok=True)
        key_file = work / "log.key"
        self.storage = SqliteStorage(work / "log.db")
        self.storage.set_meta(META_VKEY, signer.verifier_key())
        self.storage.set_meta(META_KEY_FILE, str(key_file))
        self.log = Log(self.storage, ORIGIN)

    def add(self, *entries: bytes, witnesses: tuple[int, ...] = (0, 1)) -> bytes:
        """Add entries, sign and cosign a checkpoint, publish tiles and page; the note."""
        self.log.add(list(entries))
        note = self.log.publish(self.signer, NOW)
        text, _ = parse_note(note)
        sigs = [cosignature(text, WITNESS_SIGNERS[i], COSIGN_TS) for i in witnesses]
        cosigned = append_signatures(note, sigs) if sigs else note
        self.storage.write_checkpoint(parse_checkpoint(text).size, cosigned)
        publish_tiles(self.log, self.public)
        config = explorer_config(ORIGIN, self.signer.verifier_key(), WITNESS_POLICY.encode(),
                                 [RELEASE_KEY.public.to_text().strip()])
        write_explorer(self.public, config)
        return cosigned

    def close(self) -> None:
        self.storage.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """A plain static file server for ``directory`` on 127.0.0.1; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
