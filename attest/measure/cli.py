"""`attest measure`: compute the launch measurements a release entry lists.

Only the SNP calculator is imported at start-up (its option choices need it); the TDX replay
and the release statement are imported by the commands that use them (issue 12, "Start-up").
"""

from __future__ import annotations

import re

import click

from attest.measure.snp_launch import (
    MEASUREMENT_SIZE,
    VCPU_SIGNATURES,
    KernelHashes,
    OvmfImage,
    VmmType,
    snp_launch_measurement,
)
from transparency_log.common.clitools import read_input

# attest.measure.tdx_mrtd.PageOrder's values, the default first (a test keeps them equal).
PAGE_ORDERS = ["single-pass", "two-pass"]
_HEX = re.compile(r"(0x)?[0-9a-fA-F]{1,16}")


def _guest_features(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    if not _HEX.fullmatch(value):
        raise click.BadParameter(f"not a hex number: {value!r}")
    return int(value, 16)


def _ovmf_hash(_ctx: click.Context, _param: click.Parameter, value: str | None) -> bytes | None:
    if value is None:
        return None
    if len(value) != 2 * MEASUREMENT_SIZE or not re.fullmatch(r"[0-9a-fA-F]+", value):
        raise click.BadParameter(f"want {2 * MEASUREMENT_SIZE} hex digits")
    return bytes.fromhex(value)


@click.group()
def measure() -> None:
    """Compute expected TEE launch measurements from build artifacts."""


@measure.command("snp")
@click.option("--ovmf", "ovmf_path", required=True, type=click.Path(dir_okay=False),
              help="OVMF image (AmdSevX64), or its last pages with --ovmf-hash.")
@click.option("--kernel", type=click.Path(dir_okay=False), help="Kernel for -kernel boots.")
@click.option("--initrd", type=click.Path(dir_okay=False), help="Initrd (needs --kernel).")
@click.option("--append", "cmdline", help="Kernel command line (needs --kernel).")
@click.option("--vcpus", type=click.IntRange(1, 4096), required=True,
              help="Number of vCPUs the guest is launched with (one VMSA each).")
@click.option("--vcpu-type", type=click.Choice(sorted(VCPU_SIGNATURES)),
              help="QEMU CPU model (required with --vmm-type qemu).")
@click.option("--vmm-type", type=click.Choice([v.value for v in VmmType]), default="qemu",
              show_default=True, help="The VMM that launches the guest (VMSA layout).")
@click.option("--guest-features", default="0x1", callback=_guest_features, show_default=True,
              help="VMSA SEV_FEATURES (hex).")
@click.option("--ovmf-hash", callback=_ovmf_hash,
              help="Precomputed launch digest of the OVMF pages (96 hex digits).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the release predicate's snp entry instead of bare hex.")
def measure_snp(ovmf_path: str, kernel: str | None, initrd: str | None, cmdline: str | None,
                vcpus: int, vcpu_type: str | None, vmm_type: str, guest_features: int,
                ovmf_hash: bytes | None, as_json: bool) -> None:
    """Print the SEV-SNP launch MEASUREMENT (hex) of an OVMF guest."""
    vmm = VmmType(vmm_type)
    if vcpu_type is None and vmm is VmmType.QEMU:
        raise click.UsageError("--vcpu-type is required with --vmm-type qemu")
    if kernel is None and (initrd is not None or cmdline is not None):
        raise click.UsageError("--initrd and --append need --kernel")
    ovmf = OvmfImage.parse(read_input(ovmf_path))
    hashes = None
    if kernel is not None:
        hashes = KernelHashes.of(read_input(kernel),
                                 read_input(initrd) if initrd is not None else None, cmdline)
    digest = snp_launch_measurement(
        ovmf, vcpus=vcpus, vcpu_signature=VCPU_SIGNATURES.get(vcpu_type or "", 0),
        vmm_type=vmm, guest_features=guest_features, kernel_hashes=hashes,
        ovmf_digest=ovmf_hash)
    if as_json:
        from attest.release import canonical_json
        from attest.release.measurements import SnpMeasurement

        entry = SnpMeasurement(vcpus, vcpu_type or "default", vmm.value, digest)
        click.echo(canonical_json.encode(entry.to_json()).decode("utf-8"))
    else:
        click.echo(digest.hex())


@measure.command("tdx")
@click.option("--tdvf", "tdvf_path", type=click.Path(dir_okay=False),
              help="TDVF (OVMF IntelTdx) firmware image: gives MRTD.")
@click.option("--order", type=click.Choice(PAGE_ORDERS), default=PAGE_ORDERS[0],
              show_default=True,
              help="Page add/extend order: single-pass = upstream Linux KVM.")
@click.option("--event-log", "event_log_path", type=click.Path(dir_okay=False),
              help="CCEL event log area of a reference boot of this build: gives RTMR0-2.")
def measure_tdx(tdvf_path: str | None, order: str, event_log_path: str | None) -> None:
    """Print the TDX MRTD (hex) of a TD booted from a TDVF image.

    With --event-log, the RTMR0-2 of a reference boot are replayed from its event log
    (TDX Virtual Firmware Design Guide section 10) and, with --tdvf too, the line printed is
    MRTD:RTMR0:RTMR1:RTMR2, the form `attest publish --tdx` takes.
    """
    if tdvf_path is None and event_log_path is None:
        raise click.UsageError("give --tdvf, --event-log, or both")
    from attest.formats.ccel import parse_event_log
    from attest.measure.rtmr_replay import replay
    from attest.measure.tdx_mrtd import PageOrder, TdvfImage, tdx_mrtd

    parts: list[str] = []
    if tdvf_path is not None:
        parts.append(tdx_mrtd(TdvfImage.parse(read_input(tdvf_path)),
                              order=PageOrder(order)).hex())
    if event_log_path is not None:
        rtmrs = replay(parse_event_log(read_input(event_log_path))).rtmrs
        parts.extend(r.hex() for r in rtmrs[:3])
    click.echo(":".join(parts))
