"""`attest simulate measurements`: what `attest publish` needs for a simulated node.

A node started with `attest agent --simulate` presents the launch measurements of the
simulated guest image named by its ``[simulate] seed`` (attest/simulate/platform.py,
:func:`simulated_measurements`) and ``[simulate] gpus`` GPUs reporting the simulator's driver
and VBIOS versions (``--gpu-driver``/``--gpu-vbios``; ``--no-gpu`` for a node without GPUs,
since `attest publish` requires one or the other).
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


def simulated_publish_values(seed: str, gpus: int = 1) -> dict[str, object]:
    """The measurements and GPU versions of the simulated node with ``seed`` and ``gpus``
    GPUs, and the `attest publish` arguments that list them."""
    from attest.simulate.platform import SimulatedPlatform, simulated_measurements

    m = simulated_measurements(seed.encode())
    defaults = {f.name: f.default for f in dataclasses.fields(SimulatedPlatform)}
    driver, vbios = str(defaults["gpu_driver"]), str(defaults["gpu_vbios"])
    tdx = ":".join(m[k].hex() for k in ("mrtd", "rtmr0", "rtmr1", "rtmr2"))
    gpu_args = ["--gpu-driver", driver, "--gpu-vbios", vbios] if gpus else ["--no-gpu"]
    return {
        "simulated": True,
        "seed": seed,
        "gpus": gpus,
        "snp": {"measurement": m["measurement"].hex()},
        "tdx": {k: m[k].hex() for k in ("mrtd", "rtmr0", "rtmr1", "rtmr2")},
        "gpu": {"driver_version": driver, "vbios_version": vbios} if gpus else None,
        "publish_args": ["--snp", f"{SNP_ENTRY}:{m['measurement'].hex()}", "--tdx", tdx,
                         *gpu_args],
    }


@click.group("simulate")
def simulate_group() -> None:
    """Simulated hardware (attest agent --simulate): print what it measures."""


@simulate_group.command("measurements")
@click.option("--seed", help="The [simulate] seed of the node (default: the agent's default, "
              "or the one in --config).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="The agent's config file; its [simulate] seed and gpus are used.")
@click.option("--gpus", type=click.IntRange(0, 8),
              help="The node's [simulate] gpus (default: the agent's default, 1, or the one in "
                   "--config); 0 prints --no-gpu.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON object (measurements, GPU versions, publish_args).")
def measurements_command(seed: str | None, config_path: str | None, gpus: int | None,
                         as_json: bool) -> None:
    """Print the `attest publish` arguments matching a simulated node's measurements and
    GPUs (--gpu-driver/--gpu-vbios, or --no-gpu)."""
    if seed is not None and config_path is not None:
        raise click.UsageError("give --seed or --config, not both")
    if seed is None or gpus is None:
        from attest.agent.config import SimulateSettings, load_config

        settings = (load_config(config_path).simulate if config_path is not None
                    else SimulateSettings())
        seed = seed if seed is not None else settings.seed
        gpus = gpus if gpus is not None else settings.gpus
    values = simulated_publish_values(seed, gpus)
    if as_json:
        click.echo(json.dumps(values, indent=2))
        return
    args = values["publish_args"]
    assert isinstance(args, list)
    click.echo(" ".join(args))
