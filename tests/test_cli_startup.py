"""Start-up (issue 12): the command groups import a subcommand's module only when it runs.

Structural, not timed (bench/startup_bench.py has the figures): a `--help` in a fresh
interpreter must not import the heavy libraries, and each group's table of short helps must
say what the commands themselves say.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.support.vectors import vector_path
from transparency_log.common.clitools import LazyGroup

GROUPS = ["verifier.cli", "attest.cli", "transparency_log.cli.main"]
HEAVY = ["sigstore", "signxml", "starlette", "uvicorn", "requests", "cbor2", "psycopg"]
OVMF = vector_path("snp", "sev-snp-measure", "ovmf_AmdSev_suffix.bin")


def _loaded_after(module: str, argv: list[str]) -> set[str]:
    """Top-level packages in sys.modules after ``module.main(argv)`` in a new interpreter."""
    code = (
        "import json, sys\n"
        f"from {module} import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("module", GROUPS)
def test_group_help_imports_nothing_heavy(module: str) -> None:
    loaded = _loaded_after(module, ["--help"])
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"{module} --help imported {heavy}"
    ours = {m for m in loaded if m.split(".")[0] in ("attest", "verifier", "transparency_log")}
    assert ours <= {module, module.split(".")[0], "transparency_log",
                    "transparency_log.common", "transparency_log.cli",
                    "transparency_log.common.clitools", "transparency_log.common.errors",
                    "transparency_log.common.exit_status"}, sorted(ours)


def test_measure_snp_imports_only_the_calculator() -> None:
    loaded = _loaded_after("attest.cli", [
        "measure", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", str(OVMF)])
    assert "attest.measure.snp_launch" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, heavy
    unneeded = {"attest.release.statement", "attest.measure.tdx_mrtd", "attest.agent",
                "attest.formats.ccel", "cryptography"}
    assert not loaded & unneeded, sorted(loaded & unneeded)


@pytest.mark.parametrize("module", GROUPS)
def test_table_short_help_is_the_commands_own(module: str) -> None:
    group = importlib.import_module(module).main
    assert isinstance(group, LazyGroup) and group.lazy_commands
    for name, (_target, short_help) in group.lazy_commands.items():
        command = group.load_lazy(name)
        assert command.get_short_help_str(limit=1000) == short_help, name
        assert command.name == name


@pytest.mark.parametrize("module", GROUPS)
def test_group_help_lists_every_command(module: str) -> None:
    group = importlib.import_module(module).main
    out = CliRunner().invoke(group, ["--help"]).output
    for name in group.lazy_commands:
        assert f"  {name} " in out, name


def test_unknown_command_is_a_usage_error() -> None:
    from verifier.cli import main

    result = CliRunner().invoke(main, ["nosuch"])
    assert result.exit_code == 64 and "No such command 'nosuch'" in result.output


def test_measure_page_orders_are_tdx_mrtds() -> None:
    from attest.measure.cli import PAGE_ORDERS
    from attest.measure.tdx_mrtd import PageOrder

    assert PAGE_ORDERS == [o.value for o in PageOrder]
