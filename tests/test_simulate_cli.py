"""`attest simulate measurements` (issue 12): what `attest publish` needs for the node that
`attest agent --simulate` runs, with no Python internals. The printed values are checked
against the evidence the simulated platform itself produces (its SNP report, its TDX quote,
its GPUs' driver version), for the default seed, a given seed and an agent config's seed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from attest.cli import main
from attest.platform import launch_identity
from attest.simulate.platform import SimulatedPlatform

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _values(*args: str) -> dict:
    out = CliRunner().invoke(main, ["simulate", "measurements", "--json", *args])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.mark.parametrize("seed", [None, "demo-build-a"])
def test_measurements_match_the_simulated_node(seed: str | None) -> None:
    values = _values(*(["--seed", seed] if seed else []))
    seed_bytes = (seed or "attestlog-sim").encode()
    snp = SimulatedPlatform(cpu="sev-snp", gpus=1, seed=seed_bytes, now=NOW)
    got = launch_identity(snp.collect_cpu(b"\x00" * 64).item)
    assert values["snp"]["measurement"] == got.measurement.hex()
    tdx = SimulatedPlatform(cpu="tdx", gpus=0, seed=seed_bytes, now=NOW)
    got = launch_identity(tdx.collect_cpu(b"\x00" * 64).item)
    assert values["tdx"] == {"mrtd": got.mrtd.hex(), "rtmr0": got.rtmr0.hex(),
                             "rtmr1": got.rtmr1.hex(), "rtmr2": got.rtmr2.hex()}
    assert values["gpu"]["driver_version"] == snp.gpu_driver
    assert values["gpu"]["vbios_version"] == snp.gpu_vbios
    assert values["simulated"] is True
    args = values["publish_args"]
    assert args[args.index("--snp") + 1].endswith(":" + values["snp"]["measurement"])
    assert args[args.index("--tdx") + 1] == ":".join(values["tdx"][k] for k in
                                                     ("mrtd", "rtmr0", "rtmr1", "rtmr2"))


def test_another_seed_is_another_image() -> None:
    assert _values("--seed", "a")["snp"] != _values("--seed", "b")["snp"]


def test_text_output_is_the_publish_arguments() -> None:
    out = CliRunner().invoke(main, ["simulate", "measurements", "--seed", "s"])
    assert out.exit_code == 0, out.output
    assert out.output.split() == _values("--seed", "s")["publish_args"]


def test_seed_from_the_agent_config(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "agent.example.toml"
    text = example.read_text()
    assert 'seed = "attestlog-sim"' in text
    config = tmp_path / "agent.toml"
    config.write_text(text.replace('seed = "attestlog-sim"', 'seed = "from-config"'))
    assert _values("--config", str(config))["seed"] == "from-config"
    both = CliRunner().invoke(main, ["simulate", "measurements", "--seed", "x",
                                     "--config", str(config)])
    assert both.exit_code == 64 and "not both" in both.output  # a usage error


def test_a_node_without_gpus_gets_no_gpu(tmp_path: Path) -> None:
    """`attest publish` requires GPU versions or --no-gpu: the printed arguments carry the
    one that matches the node ([simulate] gpus, or --gpus)."""
    assert _values("--gpus", "0")["publish_args"][-1] == "--no-gpu"
    assert _values("--gpus", "0")["gpu"] is None
    assert "--gpu-driver" in _values()["publish_args"]
    example = Path(__file__).resolve().parent.parent / "examples" / "agent.example.toml"
    config = tmp_path / "agent.toml"
    text = example.read_text()
    assert "gpus = 1" in text
    config.write_text(text.replace("gpus = 1", "gpus = 0"))
    values = _values("--config", str(config))
    assert values["gpus"] == 0 and "--no-gpu" in values["publish_args"]
