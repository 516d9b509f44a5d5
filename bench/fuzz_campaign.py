"""The long fuzz campaign, run by hand (docs/fuzzing.md; issue 16 part 8).

Two engines over the same targets (tests/support/fuzz_targets.py, tests/test_fuzz_http.py):

- ``hypothesis`` (default): the fuzz tests with ``ATTESTLOG_FUZZ_EXAMPLES`` examples per target,
  random generation, failures remembered in .hypothesis/ and replayed first next time;

      .venv/bin/python -m bench.fuzz_campaign --examples 20000 [-k note]

- ``atheris`` (coverage-guided, libFuzzer): one parser target, its seeds written to the corpus
  folder bench/out/fuzz/<target>/ first; crashes land as crash-* files in the current folder.
  atheris is not a dependency of the project: ``.venv/bin/pip install atheris`` first.

      .venv/bin/python -m bench.fuzz_campaign --engine atheris --target snp_report \\
          -- -max_total_time=600

A crash is any exception outside transparency_log.common.errors.AttestlogError (parsers) and any
5xx answer or exception (HTTP handlers).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
FUZZ_TESTS = ("tests/test_fuzz_parsers.py", "tests/test_fuzz_http.py")


def run_hypothesis(examples: int, keyword: str | None) -> int:
    env = {**os.environ, "ATTESTLOG_FUZZ_EXAMPLES": str(examples)}
    argv = [sys.executable, "-m", "pytest", *FUZZ_TESTS, "-q", "-k",
            f"never_fails or no_parser_crashes{f' and {keyword}' if keyword else ''}",
            "--hypothesis-show-statistics"]
    return subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode


def run_atheris(name: str, libfuzzer_args: list[str]) -> None:
    import atheris  # type: ignore[import-not-found]

    with atheris.instrument_imports(include=["attest", "transparency_log", "verifier"]):
        from tests.support.fuzz_support import run_parser
        from tests.support.fuzz_targets import PARSERS

    targets = {t.name: t for t in PARSERS}
    if name not in targets:
        raise SystemExit(f"unknown target {name!r}; one of: {', '.join(sorted(targets))}")
    target = targets[name]
    corpus = ROOT / "bench" / "out" / "fuzz" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(target.seeds()):
        (corpus / f"seed-{i}").write_bytes(seed)

    def one_input(data: bytes) -> None:
        if target.exclude is not None and target.exclude(data):
            return  # a known class fixed elsewhere (see the predicate's docstring)
        run_parser(target.fn, data)

    atheris.Setup([sys.argv[0], str(corpus), *libfuzzer_args], one_input)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("hypothesis", "atheris"), default="hypothesis")
    parser.add_argument("--examples", type=int, default=5000, help="hypothesis: per target")
    parser.add_argument("-k", dest="keyword", help="hypothesis: only targets matching this")
    parser.add_argument("--target", help="atheris: the parser target's name")
    parser.add_argument("libfuzzer", nargs="*", help="atheris: libFuzzer flags (after --)")
    args = parser.parse_args()
    if args.engine == "hypothesis":
        raise SystemExit(run_hypothesis(args.examples, args.keyword))
    if not args.target:
        parser.error("--engine atheris needs --target")
    run_atheris(args.target, args.libfuzzer)


if __name__ == "__main__":
    main()
