"""A bug of ours is exit 1 (or an HTTP 500), never a verdict (issue 11).

Each test injects a bug (a function the command or service calls raises KeyError) and
checks: `tlog`, `attest` and `verifier` exit 1 with the one line ``error: internal error (a
bug in attestlog, please report): KeyError: ...`` and no traceback; under ``--debug`` (or
``ATTESTLOG_TRACEBACK=1``) the traceback comes first; `verifier serve` and the node agent
answer ``500`` with one line and log one line.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
import requests
from click.testing import CliRunner

from attest.cli import main as attest_main
from transparency_log.cli.main import main as tlog_main
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.common.clitools import ErrorHandlingGroup, debug_option, json_option
from transparency_log.common.errors import BUG, SignatureError
from transparency_log.common.exit_status import ExitStatus
from verifier.cli import main as verifier_main

LINE = f"error: {BUG}: KeyError: 'injected'"


def _bug(*_args: object, **_kwargs: object) -> None:
    raise KeyError("injected")


def _tlog(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> tuple[click.Group, list[str]]:
    import transparency_log.cli.keys as keys

    monkeypatch.setattr(keys, "generate_keys", _bug)
    return tlog_main, ["keygen", "example.com/log", "--out", str(tmp / "log.key")]


def _attest(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> tuple[click.Group, list[str]]:
    import attest.release.cli as release_cli

    monkeypatch.setattr(release_cli, "generate_signing_key", _bug)
    return attest_main, ["release", "keygen", "--out", str(tmp / "release")]


def _verifier(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> tuple[click.Group, list[str]]:
    import verifier.cli_ear as cli_ear

    monkeypatch.setattr(cli_ear, "load_verification_key", _bug)
    (tmp / "ear.pub").write_text("a key\n")
    (tmp / "token").write_text("a token\n")
    return verifier_main, ["ear", "verify", str(tmp / "token"), "--key", str(tmp / "ear.pub")]


COMMANDS = {"tlog": _tlog, "attest": _attest, "verifier": _verifier}


@pytest.mark.parametrize("root", COMMANDS)
def test_a_bug_is_exit_1_and_one_line(root: str, monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    main, args = COMMANDS[root](monkeypatch, tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == ExitStatus.UNEXPECTED, result.output
    assert result.stderr.splitlines() == [LINE]
    assert "Traceback" not in result.output and result.stdout == ""


@pytest.mark.parametrize("root", COMMANDS)
def test_debug_prints_the_traceback(root: str, monkeypatch: pytest.MonkeyPatch,
                                    tmp_path: Path) -> None:
    main, args = COMMANDS[root](monkeypatch, tmp_path)
    result = CliRunner().invoke(main, ["--debug", *args])
    assert result.exit_code == ExitStatus.UNEXPECTED, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "in _bug" in result.stderr and lines[-1] == LINE
    assert result.stderr.count("Traceback") == 1  # once, though two groups handle it


def test_the_environment_variable_prints_the_traceback(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    main, args = _tlog(monkeypatch, tmp_path)
    monkeypatch.setenv("ATTESTLOG_TRACEBACK", "1")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == ExitStatus.UNEXPECTED
    assert result.stderr.startswith("Traceback") and result.stderr.splitlines()[-1] == LINE


def _group(exc: BaseException) -> click.Group:
    @click.group(cls=ErrorHandlingGroup)
    @debug_option
    def group() -> None:
        pass

    @group.command("go")
    @json_option
    def go(as_json: bool) -> None:
        raise exc

    return group


def test_a_bug_with_json_is_an_error_object() -> None:
    result = CliRunner().invoke(_group(KeyError("injected")), ["go", "--json"])
    assert result.exit_code == ExitStatus.UNEXPECTED
    doc = json.loads(result.stdout)
    assert doc == {"verdict": "error", "exit_status": 1,
                   "error": {"kind": "bug", "message": LINE.removeprefix("error: ")}}


def test_debug_keeps_the_status_of_a_classified_error() -> None:
    result = CliRunner().invoke(_group(SignatureError("x.signature", "forged")),
                                ["--debug", "go"])
    assert result.exit_code == ExitStatus.FORGED
    assert result.stderr.startswith("Traceback")
    assert result.stderr.splitlines()[-1] == "error: x.signature: forged"


def test_click_exits_are_not_bugs() -> None:
    """``ctx.exit(N)`` and click's own exceptions are RuntimeErrors; they keep their status."""
    result = CliRunner().invoke(_group(click.exceptions.Exit(6)), ["go"])
    assert result.exit_code == 6 and result.output == ""


# ------------------------------------------------------------------ services

def _one_line_500(reply: requests.Response) -> None:
    assert reply.status_code == 500, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.text == f"{BUG}\n"


def _bug_logs(caplog: pytest.LogCaptureFixture, path: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.ERROR and "KeyError" in r.getMessage()
            and path in r.getMessage()]


def test_verifier_serve_answers_a_bug_with_500(monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    import verifier.serve as serve
    from verifier.ear_token import EarSigner

    monkeypatch.setattr(serve, "run_pipeline", _bug)  # the policy is never reached
    signer = EarSigner(ed25519.Ed25519PrivateKey.generate(), "attestlog test")
    app = serve.create_app(None, signer, now=lambda: None)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR), serve_in_thread(app) as (host, port):
        reply = requests.post(f"http://{host}:{port}/verify?nonce={'00' * 32}",
                              data=b"\xa0", timeout=30)
    _one_line_500(reply)
    assert "verdict" not in reply.text
    assert _bug_logs(caplog, "/verify") == [
        f"{BUG}: KeyError: 'injected' on /verify"]


def test_agent_answers_a_bug_with_500(caplog: pytest.LogCaptureFixture) -> None:
    from attest.agent.service import BUNDLE_PATH, create_agent_app

    # What the HTTP layer reads of a NodeAgent; making a bundle is the bug.
    agent = SimpleNamespace(stopped=None, trust_json=None, bundle=_bug, cached_bundle=_bug,
                            bucket=SimpleNamespace(take=lambda: 0.0))
    with caplog.at_level(logging.ERROR), serve_in_thread(create_agent_app(agent)) as (h, p):  # type: ignore[arg-type]
        url = f"http://{h}:{p}{BUNDLE_PATH}"
        fresh = requests.post(url, data=bytes(range(32)), timeout=30)
        cached = requests.get(url, timeout=30)
    _one_line_500(fresh)
    _one_line_500(cached)
    assert len(_bug_logs(caplog, BUNDLE_PATH)) == 2
