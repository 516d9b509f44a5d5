"""Every command block in README.md and docs/*.md runs, or says why it cannot (doc_blocks.py).

A documented command that no longer exists, an option that was renamed, a file the docs read
that no command writes, an exit status that changed: each fails here, naming the document and
line of the block."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.support.doc_blocks import (
    ROOT,
    Block,
    cli_problems,
    documents,
    marking_problems,
    missing_paths,
    parse_blocks,
    runnable,
    shell_commands,
    static_problems,
)
from tests.support.doc_run import DocRun, group_alive

DOCS = documents()
RUN_DOCS = [d for d in DOCS if any(runnable(parse_blocks(d)))]


def test_every_block_is_run_or_marked() -> None:
    """No untagged command block, no directive without its reason, no unknown marking."""
    problems = [p for doc in DOCS for b in parse_blocks(doc) for p in marking_problems(b)]
    assert not problems, "\n".join(problems)


def test_documented_commands_exist() -> None:
    """Every tlog/attest/verifier command in every shell block, run or not, names existing
    subcommands and options; every Python block compiles and its imports resolve; every
    `make` target exists."""
    problems = [p for doc in DOCS for b in parse_blocks(doc) for p in static_problems(b)]
    assert not problems, "\n".join(problems)


def test_referenced_files_exist() -> None:
    """Every repository path a document names (`verifier/audit.py`, `examples/...`) exists."""
    problems = [p for doc in DOCS for p in missing_paths(doc)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", RUN_DOCS, ids=[d.name for d in RUN_DOCS])
def test_document_runs(doc: Path) -> None:
    """The executable blocks of one document, in order, in one directory on 127.0.0.1."""
    with tempfile.TemporaryDirectory(prefix=f"doc-{doc.stem}-") as tmp:
        run = DocRun(doc=doc, work=Path(tmp))
        run.prepare()
        failure = None
        try:
            for n, block in enumerate(runnable(parse_blocks(doc))):
                failure = run.run_block(n, block)
                if failure:
                    break
        finally:
            stubborn = run.stop()
        assert failure is None, failure + "\n=== earlier blocks:\n" + "\n".join(
            run.transcript[-4:-1])
        assert not stubborn, f"process groups needed SIGKILL: {stubborn}"


# ----------------------------------------------------------------- the harness itself

def _doc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(text)
    return path


def test_harness_reads_markings(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "intro\n\n<!-- no-run: needs an SNP guest -->\n\n```sh\n"
               "attest snp-report --report-data 00 -o r.bin\n```\n\ntext\n\n"
               "<!-- expect-exit: 5 -->\n```sh\nverifier node URL\n```\n"
               "```\ntlog keygen x --out k\n```\n  ```toml\n  a = 1\n  ```\n")
    blocks = parse_blocks(doc)
    assert [(b.lang, b.no_run, b.expect_exit) for b in blocks] == [
        ("sh", "needs an SNP guest", None), ("sh", None, 5), ("", None, None),
        ("toml", None, None)]
    assert blocks[3].text == "a = 1\n"
    assert [b.line for b in blocks] == [5, 12, 15, 18]
    problems = [p for b in blocks for p in marking_problems(b)]
    assert problems == [f"{blocks[2].where}: a command block without a language: tag it ```sh "
                        "(and run it, or mark it <!-- no-run: why -->)"]


def test_harness_refuses_bad_markings(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "<!-- no-run: -->\n```sh\nls\n```\n"
               "```sh no-run\nls\n```\n"
               "<!-- expect-exit: 2 -->\n```sh\nls\nls\n```\n"
               "<!-- no-run: because -->\n\nparagraph\n\n```sh\nls\n```\n")
    blocks = parse_blocks(doc)
    problems = [p for b in blocks for p in marking_problems(b)]
    assert len(problems) == 3, problems
    assert "must say why" in problems[0]
    assert "info string" in problems[1]
    assert "exactly one command" in problems[2]
    assert blocks[3].no_run is None     # a paragraph between cancels the directive


def test_harness_finds_unknown_commands_and_options() -> None:
    assert cli_problems(["tlog", "keygen", "x", "--out", "k"]) == []
    assert cli_problems(["verifier", "node", "URL", "[--json]", "[--offline]"]) == []
    assert cli_problems(["tlog", "keygen", "x", "--outt", "k"]) == [
        "`tlog keygen` has no option --outt"]
    assert cli_problems(["attest", "no-such-command"]) == [
        "`attest` has no command 'no-such-command'"]
    assert cli_problems(["tlog", "witness", "serve", "--db", "--listen"]) == []  # a value
    words = shell_commands("tlog keygen a --out k \\\n  --bogus # --nope\n"
                           "x=$(verifier node u) && cat <<EOF > f\ntlog nope\nEOF\n")
    assert words[0] == ["tlog", "keygen", "a", "--out", "k", "--bogus"]
    assert ["tlog", "nope"] not in words


def test_harness_runs_in_order_and_fails_on_the_right_block(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "```sh\nGREETING=hello\nmkdir sub && cd sub\n```\n"
               "```sh\ntest \"$GREETING\" = hello && test \"$(basename $PWD)\" = sub\n"
               "echo 127.0.0.1:8080\n```\n"
               "<!-- expect-exit: 3 -->\n```sh\nexit 3\n```\n"
               "```sh\nfalse\necho not reached\n```\n")
    run = DocRun(doc=doc, work=tmp_path / "w")
    run.work.mkdir()
    (run.work / ".home").mkdir()
    blocks = list(runnable(parse_blocks(doc)))
    assert [run.run_block(n, b) for n, b in enumerate(blocks[:3])] == [None, None, None]
    assert "127.0.0.1:8080" not in run.transcript[1]      # the port was mapped
    failure = run.run_block(3, blocks[3])
    assert failure is not None and failure.startswith(f"{blocks[3].where}: exit status 1")
    assert run.stop() == []


def test_harness_stops_background_servers(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "```sh\npython -m http.server --bind 127.0.0.1 0 "
               "> http.log 2>&1 &\n```\n")
    run = DocRun(doc=doc, work=tmp_path)
    (tmp_path / ".home").mkdir()
    block = next(runnable(parse_blocks(doc)))
    assert run.run_block(0, block) is None
    assert len(run.groups) == 1 and group_alive(run.groups[0])   # bash exited, server runs
    assert run.stop() == []
    assert not group_alive(run.groups[0])


def test_harness_finds_missing_files(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "see `verifier/no_such_module.py`, [x](examples/demo.py) and "
               "`attest/cli.py`\n")
    assert missing_paths(doc) == [
        f"{doc}:1: verifier/no_such_module.py is not in the repository"]


def test_every_document_is_read() -> None:
    names = {d.relative_to(ROOT).as_posix() for d in DOCS}
    assert "README.md" in names and "docs/journeys.md" in names


def test_block_where_is_a_line_number() -> None:
    b = Block(doc=ROOT / "README.md", line=3, lang="sh", info=(), text="")
    assert b.where == "README.md:3"
