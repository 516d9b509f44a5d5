"""The command blocks of README.md and docs/*.md, read and run (tests/test_docs_commands.py).

Like tessera's README_test.go: a documented command is one a test runs, so a doc cannot drift
from the CLI. A fenced block is *executable* when its info string starts with `sh`, `bash`,
`shell` or `python`. Each executable block either runs or is marked, in an HTML comment on
the lines before it (blank lines between are allowed):

    <!-- no-run: why this block cannot run in a test -->   (real hardware, systemd, a CI job)
    <!-- expect-exit: 5 -->                                   (a one-command block that fails)

The blocks of one document run in order (:class:`tests.support.doc_run.DocRun`), in one
temporary directory (a copy of examples/ and a link to tests/vectors beside them, as in a
checkout), with the project's virtualenv first on PATH and a private HOME/XDG tree. Shell
variables set by one block are seen by the next.
`127.0.0.1:PORT` in a document names a port for the reader; the test maps each to a free
port. A block may start a server in the background (`... &`): the test waits for the
`--listen` address (or the `listen` key of a `--config` file) named in that block, and kills
every process group it started at the end.

Blocks marked no-run are still read: every `tlog`/`attest`/`verifier` command in them must
name existing subcommands and options, and a Python block must compile and its imports
resolve. A block with no language that starts with one of our commands is an error: tag it.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGS = frozenset({"sh", "bash", "shell"})
PYTHON_LANGS = frozenset({"python", "py"})
CLI_ROOTS = {"tlog": "transparency_log.cli.main", "attest": "attest.cli",
             "verifier": "verifier.cli"}
COMMAND_WORDS = (*CLI_ROOTS, "make", "python", "pip", "curl", "$ ")
DIRECTIVE = re.compile(r"<!--\s*(no-run|expect-exit)\s*:\s*(.*?)\s*-->", re.S)
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


def documents() -> list[Path]:
    """README.md and every page under docs/ (sorted), the documents whose blocks are run."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int                 # 1-based line of the opening fence
    lang: str                 # first word of the info string, lower case ("" if none)
    info: tuple[str, ...]     # the other words of the info string
    text: str
    no_run: str | None = None         # the reason, when marked
    expect_exit: int | None = None

    @property
    def where(self) -> str:
        doc = self.doc.relative_to(ROOT) if self.doc.is_relative_to(ROOT) else self.doc
        return f"{doc}:{self.line}"

    @property
    def executable(self) -> bool:
        return self.lang in SHELL_LANGS or self.lang in PYTHON_LANGS


def parse_blocks(doc: Path) -> list[Block]:
    """Every fenced block of a CommonMark document, with the directives in the HTML comments
    just before it (only blank lines may separate them)."""
    lines = doc.read_text().splitlines()
    blocks: list[Block] = []
    pending: list[tuple[str, str]] = []
    comment: list[str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if comment is not None:
            comment.append(line)
            if "-->" in line:
                pending += DIRECTIVE.findall("\n".join(comment))
                comment = None
            i += 1
            continue
        if line.lstrip().startswith("<!--"):
            if "-->" in line:
                pending += DIRECTIVE.findall(line)
            else:
                comment = [line]
            i += 1
            continue
        m = FENCE.match(line)
        if not m:
            if line.strip():
                pending = []
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        words = m["info"].split()
        body: list[str] = []
        start = i + 1
        i += 1
        while i < len(lines):
            close = lines[i].strip()
            if close.startswith(fence[0] * len(fence)) and not close.strip(fence[0]):
                break
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        marks = dict(pending)
        pending = []
        exit_text = marks.get("expect-exit")
        blocks.append(Block(doc=doc, line=start, lang=words[0].lower() if words else "",
                            info=tuple(words[1:]), text="\n".join(body) + "\n",
                            no_run=marks.get("no-run"),
                            expect_exit=int(exit_text) if exit_text is not None else None))
    return blocks


def marking_problems(block: Block) -> list[str]:
    """Why a block breaks the rules above ([] when it does not)."""
    where = block.where
    problems = []
    if block.info:
        problems.append(f"{where}: info string words {block.info!r}: use an HTML comment "
                        "(<!-- no-run: why --> or <!-- expect-exit: N -->)")
    if not block.lang:
        first = next((ln.strip() for ln in block.text.splitlines() if ln.strip()), "")
        if first.startswith(COMMAND_WORDS):
            problems.append(f"{where}: a command block without a language: tag it ```sh "
                            "(and run it, or mark it <!-- no-run: why -->)")
    if not block.executable and (block.no_run is not None or block.expect_exit is not None):
        problems.append(f"{where}: a directive on a ```{block.lang} block, which is not run")
    if block.no_run is not None and not block.no_run:
        problems.append(f"{where}: <!-- no-run: --> must say why")
    if block.no_run is not None and block.expect_exit is not None:
        problems.append(f"{where}: both no-run and expect-exit")
    if block.expect_exit is not None and len(shell_commands(block.text)) != 1:
        problems.append(f"{where}: expect-exit needs a block of exactly one command")
    return problems


# ----------------------------------------------------------------- reading shell commands

def logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined, comments and here-documents left out."""
    out: list[str] = []
    current = ""
    heredoc: str | None = None
    for raw in text.splitlines():
        if heredoc is not None:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        line = raw.rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", current)
        if m:
            heredoc = m.group(1)
        if current.strip() and not current.lstrip().startswith("#"):
            out.append(current)
        current = ""
    if current.strip():
        out.append(current)
    return out


def shell_commands(text: str) -> list[list[str]]:
    """The simple commands of a shell block, each as its words (control operators split,
    comments dropped); words of unbalanced or exotic syntax are kept as they come."""
    commands: list[list[str]] = []
    for line in logical_lines(text):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            words = list(lexer)
        except ValueError:
            words = line.split()
        current: list[str] = []
        for word in words:
            if word and set(word) <= set(";&|()<>"):
                if current:
                    commands.append(current)
                current = []
                if word.startswith(">") or word.startswith("<"):
                    current = ["<redirect>"]
                continue
            if current == ["<redirect>"]:
                current = []
                continue
            current.append(word)
        if current and current != ["<redirect>"]:
            commands.append(current)
    return [c for c in commands if not re.fullmatch(r"\w+=.*", c[0]) or len(c) > 1]


def _root_command(name: str) -> click.Command:
    module = importlib.import_module(CLI_ROOTS[name])
    main = module.main
    if not isinstance(main, click.Command):
        raise TypeError(f"{CLI_ROOTS[name]}.main is not a click command")
    return main


def _options(cmd: click.Command) -> dict[str, click.Option]:
    found: dict[str, click.Option] = {}
    for param in cmd.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                found[name] = param
    return found


HELP_WORDS = frozenset({"--help", "-h", "--version"})
PLACEHOLDER = re.compile(r"^\.\.\.|^\[|^<|^[A-Z][A-Z0-9_]*(\.\.\.)?$")


def cli_problems(words: list[str]) -> list[str]:
    """Whether a `tlog`/`attest`/`verifier` command names existing subcommands and options.
    A synopsis is allowed: `[--json]` is read as `--json`, `...` and CAPS placeholders pass."""
    cmd = _root_command(words[0])
    path = [words[0]]
    ctx = click.Context(cmd, info_name=words[0])
    rest = list(words[1:])
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        name = rest[0]
        if name in ("...",) or name.startswith("[") or name == "/":
            return []
        sub = cmd.get_command(ctx, name)
        if sub is None:
            return [f"`{' '.join(path)}` has no command {name!r}"]
        path.append(name)
        rest.pop(0)
        cmd = sub
        ctx = click.Context(cmd, info_name=name, parent=ctx)
    if isinstance(cmd, click.Group):
        return []
    options = _options(cmd)
    problems = []
    skip = 0
    for word in rest:
        if skip:
            skip -= 1
            continue
        token = word.strip("[]").rstrip(",")
        if word in ("/", "|"):
            break     # a synopsis listing alternatives: `attest a ... / attest b ...`
        if not token.startswith("-") or token in ("-", "--"):
            continue
        name = token.split("=", 1)[0]
        if name in HELP_WORDS:
            continue
        opt = options.get(name)
        if opt is None:
            problems.append(f"`{' '.join(path)}` has no option {name}")
            continue
        if not (opt.is_flag or opt.count) and "=" not in token and not word.endswith("]"):
            skip = max(opt.nargs, 1)
    return problems


def python_problems(block: Block) -> list[str]:
    """A Python block compiles and every `import`/`from ... import` in it resolves."""
    import ast

    try:
        tree = ast.parse(block.text)
    except SyntaxError as exc:
        return [f"{block.where}: Python does not compile: {exc}"]
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            try:
                module = importlib.import_module(node.module)
            except ImportError as exc:
                problems.append(f"{block.where}: {exc}")
                continue
            for alias in node.names:
                if alias.name == "*" or hasattr(module, alias.name):
                    continue
                if importlib.util.find_spec(f"{node.module}.{alias.name}") is None:
                    problems.append(f"{block.where}: {node.module} has no {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if importlib.util.find_spec(alias.name) is None:
                    problems.append(f"{block.where}: no module {alias.name}")
    return problems


def make_targets() -> set[str]:
    """The Makefile's targets, with its simple variables (`NAME := value`) expanded."""
    text = (ROOT / "Makefile").read_text()
    variables: dict[str, str] = {}
    for name, value in re.findall(r"^(\w+)\s*[:?]?=\s*(.*)$", text, re.M):
        variables[name] = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m[1], ""), value)
    text = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m[1], m[0]), text)
    return set(re.findall(r"^([\w./-]+):(?!=)", text, re.M))


def static_problems(block: Block) -> list[str]:
    """What a block names that does not exist (commands, options, make targets, imports)."""
    if block.lang in PYTHON_LANGS:
        return python_problems(block)
    if block.lang not in SHELL_LANGS:
        return []
    problems = []
    for words in shell_commands(block.text):
        if words[0] in CLI_ROOTS:
            problems += [f"{block.where}: {p}" for p in cli_problems(words)]
        elif words[0] == "make":
            targets = make_targets()
            problems += [f"{block.where}: the Makefile has no target {w!r}"
                         for w in words[1:] if not w.startswith("-") and "=" not in w
                         and w not in targets]
    return problems


def runnable(blocks: list[Block]) -> Iterator[Block]:
    return (b for b in blocks if b.executable and b.no_run is None)


REPO_PATH = re.compile(
    r"(?:`|\]\()((?:attest|verifier|transparency_log|tests|examples|bench|docs)/[\w./-]*"
    r")(?:[`)#])")


def missing_paths(doc: Path) -> list[str]:
    """Repository paths a document names (in backticks or as a link, starting with a
    top-level folder) that do not exist, relative to the root or to the document."""
    problems = []
    for n, line in enumerate(doc.read_text().splitlines(), 1):
        for path in REPO_PATH.findall(line):
            path = path.rstrip(".")
            if not any(c.exists() for c in (ROOT / path, doc.parent / path)):
                name = doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc
                problems.append(f"{name}:{n}: {path} is not in the repository")
    return problems
