"""`attest simulate measurements`: what `attest publish` needs for a simulated node.

A node started with `attest agent --simulate` presents the launch measurements of the
simulated guest image named by its ``[simulate] seed`` (attest/simulate/platform.py,
:func:`simulated_measurements`) and GPUs reporting the simulator's driver and VBIOS versions.
This command prints them, so a simulated journey (docs, demo) publishes a matching release
without Python internals. Simulated values only: they match no real hardware.
"""

from __future__ import annotations

import dataclasses
import json

import click

# The SNP measurement entry of `attest publish --snp VCPUS:VCPU_TYPE:VMM:HEX` for a simulated
# node (the simulator does not model vCPU counts; any entry with its MEASUREMENT matches).
SNP_ENTRY = "4:EPYC-v4:qemu"


def simulated_publish_values(seed: str) -> dict[str, object]:
    """The measurements and GPU versions of the simulated node with ``seed``, and the
    `attest publish` arguments that list them."""
    from attest.simulate.platform import SimulatedPlatform, simulated_measurements

    m = simulated_measurements(seed.encode())
    defaults = {f.name: f.default for f in dataclasses.fields(SimulatedPlatform)}
    driver, vbios = str(defaults["gpu_driver"]), str(defaults["gpu_vbios"])
    tdx = ":".join(m[k].hex() for k in ("mrtd", "rtmr0", "rtmr1", "rtmr2"))
    return {
        "simulated": True,
        "seed": seed,
        "snp": {"measurement": m["measurement"].hex()},
        "tdx": {k: m[k].hex() for k in ("mrtd", "rtmr0", "rtmr1", "rtmr2")},
        "gpu": {"driver_version": driver, "vbios_version": vbios},
        "publish_args": ["--snp", f"{SNP_ENTRY}:{m['measurement'].hex()}", "--tdx", tdx,
                         "--gpu-driver", driver, "--gpu-vbios", vbios],
    }


@click.group("simulate")
def simulate_group() -> None:
    """Simulated hardware (attest agent --simulate): print what it measures."""


@simulate_group.command("measurements")
@click.option("--seed", help="The [simulate] seed of the node (default: the agent's default, "
              "or the one in --config).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="The agent's config file; its [simulate] seed is used.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON object (measurements, GPU versions, publish_args).")
def measurements_command(seed: str | None, config_path: str | None, as_json: bool) -> None:
    """Print the `attest publish` arguments matching a simulated node's measurements."""
    if seed is not None and config_path is not None:
        raise click.UsageError("give --seed or --config, not both")
    if seed is None:
        from attest.agent.config import SimulateSettings, load_config

        seed = (load_config(config_path).simulate.seed if config_path is not None
                else SimulateSettings().seed)
    values = simulated_publish_values(seed)
    if as_json:
        click.echo(json.dumps(values, indent=2))
        return
    args = values["publish_args"]
    assert isinstance(args, list)
    click.echo(" ".join(args))
