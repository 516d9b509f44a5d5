"""`attest publish` and `attest revoke`: sign a release (or a revocation), submit it to the
log, wait for a witness-cosigned checkpoint and save the entry and its tlog-proof.

    attest publish --log URL --log-vkey VKEY --release-key KEY (--token-file F |
        --submitter NAME --submitter-key F) --name NAME --image FILE --repository URI
        --commit HEX --builder URI [--artifact KIND=FILE ...] [--artifact-sha256 KIND=NAME=HEX ...]
        [--snp VCPUS:VCPU_TYPE:VMM:HEX ... | --ovmf F --vcpus N --vcpu-type T ...]
        [--tdx MRTD:RTMR0:RTMR1:RTMR2] (--gpu-driver V ... --gpu-vbios V ... | --no-gpu)
        [--out DIR]

writes ``DIR/NAME.release.json`` (the log entry: canonical DSSE JSON) and
``DIR/NAME.tlog-proof`` (c2sp.org/tlog-proof@v1, checked against ``--log-vkey`` and, when
given, ``--witness-policy`` before it is saved). ``--no-submit`` only signs and writes the
entry (a build that is signed but not published: clients refuse it, ``log.inclusion``).

The GPU versions are required: a release lists the driver and VBIOS versions its nodes' GPUs
run (clients refuse a node whose GPUs run versions its release does not list), or says
``--no-gpu``, a release for CPU-only nodes. Giving neither is a usage error (exit 64): a
release that every client would refuse on its GPU-equipped nodes is not published by omission.

``--sigstore-bundle FILE``: the release's Sigstore bundle from CI (a message-signature bundle
over the statement, the image or one of ``--artifact``/``--artifact-sha256``; anything else is
refused before signing, ``release.sigstore.artifact``) is copied to ``DIR/NAME.sigstore.json``,
the folder the node agent staples it from (``[release] sigstore_bundles``). Its signature and
signer identity are judged by each client's ``[release.sigstore]`` policy, not here.

    attest revoke (RELEASE | --measurement HEX96) --reason TEXT --log URL --log-vkey VKEY
        --release-key KEY (--token-file F | --submitter NAME --submitter-key F)
        [--accept-key PUB ...] [--out DIR]

revokes a release's statement (RELEASE: its entry file, or ``sha256:HEX`` of a logged
release's entry or statement digest) or a build (every release listing the measurement, now
or later); docs/formats.md, "Revocation predicate". It first reads the log and lists the
releases that share the measurements (a release revocation leaves them valid) or that the
build revocation refuses.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from attest.measure.snp_launch import (
    VCPU_SIGNATURES,
    KernelHashes,
    OvmfImage,
    VmmType,
    snp_launch_measurement,
)
from attest.release.dsse import VerifiedEntry, entry_digest, open_entry, sign_statement
from attest.release.keys import ReleasePublicKey, load_signing_key_file
from attest.release.measurements import GpuAllowList, Measurements, SnpMeasurement, TdxMeasurement
from attest.release.revocation_index import RevocationIndex, RevocationRecord
from attest.release.sigstore_binding import sigstore_targets
from attest.release.sigstore_check import signed_digest
from attest.release.statement import ARTIFACT_KINDS, Artifact, Release, Revocation, Subject
from attest.release.submit_client import SubmitAuth, submit_entry
from transparency_log.client.log_client import LogClient, source_for
from transparency_log.common.clitools import read_input
from transparency_log.common.errors import AttestlogError, SignatureError, TrustConfigError
from transparency_log.core.key_types import Verifier
from transparency_log.core.tlog_proof import parse_tlog_proof, verify_tlog_proof
from transparency_log.core.witness_policy import parse_witness_policy

PROGRESS_EVERY = 5.0  # seconds between two "waiting for the witness quorum" lines (stderr)
_HEX48 = r"[0-9a-f]{96}"
_SNP = re.compile(rf"(\d+):([0-9A-Za-z][0-9A-Za-z._+-]*):(qemu|ec2|gce):({_HEX48})")
_TDX = re.compile(rf"({_HEX48}):({_HEX48}):({_HEX48}):({_HEX48})")
_ARTIFACT_SHA256 = re.compile(r"([a-z]+)=([\x21-\x7e][\x20-\x7e]*)=([0-9a-f]{64})")


def _auth(token_file: str | None, submitter: str | None, submitter_key: str | None,
          ) -> SubmitAuth:
    if token_file is not None:
        return SubmitAuth(token=Path(token_file).read_text(encoding="utf-8").strip())
    if submitter is None or submitter_key is None:
        raise click.UsageError("give --token-file, or --submitter and --submitter-key")
    key = load_signing_key_file(Path(submitter_key)).private_key
    if not isinstance(key, Ed25519PrivateKey):
        raise TrustConfigError("publish.auth", "submitter keys are Ed25519",
                               field="submitter-key", got=type(key).__name__)
    return SubmitAuth(submitter=submitter, key=key)


def _waiting(seconds: float) -> None:
    click.echo(f"waiting for the witness quorum ({seconds:.0f} s)…", err=True)


def _submit(entry: bytes, log_url: str, log_vkey: str, witness_policy: str | None,
            auth: SubmitAuth) -> bytes:
    click.echo(f"submitted to {log_url}; the log answers once its witnesses cosign", err=True)
    proof_bytes = submit_entry(log_url, entry, auth, progress=_waiting,
                               progress_every=PROGRESS_EVERY)
    policy = parse_witness_policy(read_input(witness_policy)) if witness_policy else None
    cp = verify_tlog_proof(entry, parse_tlog_proof(proof_bytes), Verifier(log_vkey), policy)
    click.echo(f"logged at index {parse_tlog_proof(proof_bytes).index}, checkpoint "
               f"{cp.origin} size {cp.size}", err=True)
    return proof_bytes


def _submission_options(f):  # type: ignore[no-untyped-def]
    for option in reversed([
        click.option("--log", "log_url", help="The log's base URL (tlog serve)."),
        click.option("--log-vkey", help="The log's verifier key (checks the returned proof)."),
        click.option("--witness-policy", type=click.Path(dir_okay=False),
                     help="tlog-policy file the returned checkpoint must satisfy."),
        click.option("--release-key", required=True, type=click.Path(dir_okay=False),
                     help="Release signing key (attest release keygen)."),
        click.option("--token-file", type=click.Path(dir_okay=False),
                     help="File holding the log's submitter bearer token."),
        click.option("--submitter", help="Submitter name (Tlog-Signature authentication)."),
        click.option("--submitter-key", type=click.Path(dir_okay=False),
                     help="The submitter's Ed25519 private key (PKCS#8 PEM, mode 0600)."),
    ]):
        f = option(f)
    return f


def _need_log(log_url: str | None, log_vkey: str | None) -> tuple[str, str]:
    if not log_url or not log_vkey:
        raise click.UsageError("--log and --log-vkey are required to submit")
    return log_url, log_vkey


def _snp_measurements(snp: tuple[str, ...], ovmf: str | None, vcpus: int | None,
                      vcpu_type: str | None, kernel: str | None, initrd: str | None,
                      cmdline: str | None) -> list[SnpMeasurement]:
    out = []
    for text in snp:
        m = _SNP.fullmatch(text)
        if m is None:
            raise click.BadParameter(f"want VCPUS:VCPU_TYPE:VMM:96-hex, got {text!r}",
                                     param_hint="--snp")
        out.append(SnpMeasurement(int(m[1]), m[2], m[3], bytes.fromhex(m[4])))
    if ovmf is not None:
        if vcpus is None or vcpu_type is None:
            raise click.UsageError("--ovmf needs --vcpus and --vcpu-type")
        hashes = None
        if kernel is not None:
            hashes = KernelHashes.of(read_input(kernel),
                                     read_input(initrd) if initrd else None, cmdline)
        digest = snp_launch_measurement(
            OvmfImage.parse(read_input(ovmf)), vcpus=vcpus,
            vcpu_signature=VCPU_SIGNATURES[vcpu_type], vmm_type=VmmType.QEMU,
            kernel_hashes=hashes)
        out.append(SnpMeasurement(vcpus, vcpu_type, "qemu", digest))
    return out


def _check_gpu_options(driver: tuple[str, ...], vbios: tuple[str, ...], no_gpu: bool) -> None:
    """GPU versions, or ``--no-gpu``, exactly one of them (a usage error, exit 64)."""
    if no_gpu and (driver or vbios):
        raise click.UsageError("--no-gpu (a release for CPU-only nodes) takes no "
                               "--gpu-driver/--gpu-vbios")
    if not no_gpu and not (driver and vbios):
        raise click.UsageError("--gpu-driver and --gpu-vbios are required (the versions the "
                               "nodes' GPUs run; `attest simulate measurements` prints them for "
                               "a simulated node), or --no-gpu for a release of CPU-only nodes")


@click.command("publish")
@_submission_options
@click.option("--name", required=True, help="The image's name (the statement's subject).")
@click.option("--image", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The image file (its SHA-256 is the subject digest).")
@click.option("--repository", required=True, help="Source repository URI.")
@click.option("--commit", required=True, help="Source commit (40 or 64 hex digits).")
@click.option("--builder", required=True, help="Builder id URI.")
@click.option("--artifact", "artifacts", multiple=True,
              help=f"KIND=FILE, KIND one of {', '.join(ARTIFACT_KINDS)} (repeatable).")
@click.option("--artifact-sha256", "artifact_digests", multiple=True,
              help="KIND=NAME=HEX: an artifact by its SHA-256 (64 lowercase hex), when the file "
                   "is not at hand (repeatable).")
@click.option("--sigstore-bundle", type=click.Path(dir_okay=False, exists=True),
              help="The release's Sigstore bundle from CI, over the statement, the image or an "
                   "artifact; saved as NAME.sigstore.json for the node agent to staple.")
@click.option("--snp", multiple=True, help="Expected SNP measurement VCPUS:VCPU_TYPE:VMM:HEX.")
@click.option("--ovmf", type=click.Path(dir_okay=False, exists=True),
              help="Compute the SNP measurement from this OVMF (with --vcpus, --vcpu-type).")
@click.option("--vcpus", type=click.IntRange(1, 4096),
              help="SNP: vCPU count to compute the launch MEASUREMENT for.")
@click.option("--vcpu-type", type=click.Choice(sorted(VCPU_SIGNATURES)),
              help="SNP: vCPU model (its CPUID signature goes into each VMSA).")
@click.option("--kernel", type=click.Path(dir_okay=False, exists=True),
              help="SNP: the kernel measured by OVMF (direct boot).")
@click.option("--initrd", type=click.Path(dir_okay=False, exists=True),
              help="SNP: the initrd measured by OVMF (direct boot).")
@click.option("--append", "cmdline", help="SNP: the kernel command line measured by OVMF.")
@click.option("--tdx", help="Expected TDX measurements MRTD:RTMR0:RTMR1:RTMR2 (hex).")
@click.option("--gpu-driver", multiple=True,
              help="Allowed GPU driver version (repeatable); with --gpu-vbios, required "
                   "unless --no-gpu.")
@click.option("--gpu-vbios", multiple=True,
              help="Allowed GPU VBIOS version (repeatable); with --gpu-driver, required "
                   "unless --no-gpu.")
@click.option("--no-gpu", is_flag=True,
              help="A release for CPU-only nodes: no GPU versions (a node with GPUs is then "
                   "refused by every client).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Where to write the entry and proof (default: the image's directory).")
@click.option("--no-submit", is_flag=True, help="Only sign and write the entry.")
def publish_command(log_url: str | None, log_vkey: str | None, witness_policy: str | None,
                    release_key: str, token_file: str | None, submitter: str | None,
                    submitter_key: str | None, name: str, image: str, repository: str,
                    commit: str, builder: str, artifacts: tuple[str, ...],
                    artifact_digests: tuple[str, ...], sigstore_bundle: str | None,
                    snp: tuple[str, ...], ovmf: str | None, vcpus: int | None,
                    vcpu_type: str | None, kernel: str | None, initrd: str | None,
                    cmdline: str | None, tdx: str | None, gpu_driver: tuple[str, ...],
                    gpu_vbios: tuple[str, ...], no_gpu: bool, out: str | None,
                    no_submit: bool) -> None:
    """Publish a build: digests and measurements -> signed statement -> log -> tlog-proof."""
    arts = []
    for text in artifacts:
        kind, sep, path = text.partition("=")
        if not sep or kind not in ARTIFACT_KINDS:
            raise click.BadParameter(f"want KIND=FILE with KIND in {ARTIFACT_KINDS}",
                                     param_hint="--artifact")
        arts.append(Artifact(kind, Path(path).name, hashlib.sha256(read_input(path)).digest()))
    for text in artifact_digests:
        m = _ARTIFACT_SHA256.fullmatch(text)
        if m is None or m[1] not in ARTIFACT_KINDS:
            raise click.BadParameter(f"want KIND=NAME=HEX with KIND in {ARTIFACT_KINDS} and 64 "
                                     "lowercase hex digits", param_hint="--artifact-sha256")
        arts.append(Artifact(m[1], m[2], bytes.fromhex(m[3])))
    tdx_m = None
    if tdx is not None:
        m = _TDX.fullmatch(tdx)
        if m is None:
            raise click.BadParameter("want MRTD:RTMR0:RTMR1:RTMR2, 96 hex digits each",
                                     param_hint="--tdx")
        tdx_m = TdxMeasurement(*(bytes.fromhex(m[i]) for i in range(1, 5)))
    _check_gpu_options(gpu_driver, gpu_vbios, no_gpu)
    measurements = Measurements(
        snp=tuple(_snp_measurements(snp, ovmf, vcpus, vcpu_type, kernel, initrd, cmdline)),
        tdx=tdx_m, gpu=GpuAllowList(gpu_driver, gpu_vbios) if gpu_driver else None)
    release = Release((Subject(name, hashlib.sha256(read_input(image)).digest()),),
                      repository, commit, builder, tuple(arts), measurements)
    sigstore = _bound_sigstore_bundle(sigstore_bundle, release) if sigstore_bundle else None
    key = load_signing_key_file(Path(release_key))
    entry = sign_statement(release, [key]).encode()
    out_dir = Path(out) if out else Path(image).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    base = Path(name).name
    (out_dir / f"{base}.release.json").write_bytes(entry)
    if sigstore is not None:
        (out_dir / f"{base}.sigstore.json").write_bytes(sigstore[0])
        click.echo(f"Sigstore bundle over the release's {sigstore[1]} -> "
                   f"{out_dir / base}.sigstore.json", err=True)
    digest = entry_digest(entry).hex()
    if no_submit:
        click.echo(f"signed, NOT published: sha256:{digest} -> {out_dir / base}.release.json")
        return
    url, vkey = _need_log(log_url, log_vkey)
    proof = _submit(entry, url, vkey, witness_policy, _auth(token_file, submitter,
                                                               submitter_key))
    (out_dir / f"{base}.tlog-proof").write_bytes(proof)
    click.echo(f"published sha256:{digest} -> {out_dir / base}.release.json, .tlog-proof")


def _bound_sigstore_bundle(path: str, release: Release) -> tuple[bytes, str]:
    """The bundle's bytes and what of ``release`` it signs; SignatureError
    ``release.sigstore.artifact`` when it signs none of the release's digests."""
    data = read_input(path)
    digest = signed_digest(data)
    targets = sigstore_targets(release.encode(), release, "artifact")
    if digest not in targets:
        raise SignatureError("release.sigstore.artifact", "the Sigstore bundle signs neither "
                             "the statement, the image nor an artifact of this release",
                             field="--sigstore-bundle", got=digest,
                             want=" | ".join(f"{d.hex()} ({w})" for d, w in targets.items()))
    return data, targets[digest]


def _log_releases(log_url: str, log_vkey: str, witness_policy: str | None,
                  accepted: list[ReleasePublicKey],
                  ) -> tuple[list[tuple[int, VerifiedEntry]], RevocationIndex]:
    """Every release and valid revocation of the log signed by ``accepted`` keys."""
    policy = parse_witness_policy(read_input(witness_policy)) if witness_policy else None
    client = LogClient(source_for(log_url), Verifier(log_vkey), policy=policy)
    size = client.checkpoint().checkpoint.size
    releases: list[tuple[int, VerifiedEntry]] = []
    revocations = RevocationIndex()
    for index, entry in client.entries(0, size, size):
        try:
            opened = open_entry(entry, accepted)
        except AttestlogError:
            continue  # another signer's entry: not ours to list
        if isinstance(opened.statement, Revocation):
            revocations.add(RevocationRecord(opened.statement, index, opened.digest,
                                             opened.signers))
        else:
            releases.append((index, opened))
    return releases, revocations


def _release_target(release: str, accepted: list[ReleasePublicKey],
                    logged: list[tuple[int, VerifiedEntry]]) -> VerifiedEntry:
    """RELEASE: a release entry file, or sha256:HEX naming a logged release's entry or
    statement digest."""
    text = release.removeprefix("sha256:")
    if re.fullmatch(r"[0-9a-f]{64}", text):
        digest = bytes.fromhex(text)
        found = [v for _, v in logged if digest in (v.digest, v.statement_digest)]
        if not found:
            raise click.BadParameter(f"no logged release signed by the given keys has entry or "
                                     f"statement digest sha256:{text}", param_hint="RELEASE")
        return found[0]
    opened = open_entry(read_input(release), accepted)
    if not isinstance(opened.statement, Release):
        raise click.BadParameter("the entry is not a release", param_hint="RELEASE")
    return opened


def _describe_release(index: int, v: VerifiedEntry, revocations: RevocationIndex) -> str:
    assert isinstance(v.statement, Release)
    rel = v.statement
    record = revocations.match(v.statement_digest, rel)
    state = record.describe() if record is not None else "NOT revoked"
    return (f"  entry {index}: {rel.subjects[0].name} commit {rel.commit[:12]} statement "
            f"sha256:{v.statement_digest.hex()}: {state}")


@click.command("revoke")
@click.argument("release", required=False)
@click.option("--measurement", help="Revoke a build: every release listing this 48-byte "
              "launch measurement (96 hex: an SNP MEASUREMENT, or a TDX MRTD/RTMR0-2), "
              "including releases logged later.")
@click.option("--reason", required=True, help="Why the release is revoked (logged).")
@_submission_options
@click.option("--accept-key", "accept_keys", multiple=True, type=click.Path(dir_okay=False),
              help="Another release public key whose releases count when listing the "
              "releases that share a measurement (repeatable).")
@click.option("--out", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where to write the revocation entry and its proof.")
def revoke_command(release: str | None, measurement: str | None, reason: str,
                   log_url: str | None, log_vkey: str | None, witness_policy: str | None,
                   release_key: str, token_file: str | None, submitter: str | None,
                   submitter_key: str | None, accept_keys: tuple[str, ...], out: str) -> None:
    """Revoke a release (RELEASE: its entry file, or sha256:HEX of its entry or statement) or
    a build (--measurement HEX): sign, log, save the proof (docs/operations.md).

    Revoking a release revokes its statement, in every entry that carries it. Other
    releases listing the same measurements stay valid: they are listed, and only revoking
    the build (--measurement) refuses them all.
    """
    if (release is None) == (measurement is None):
        raise click.UsageError("give RELEASE or --measurement (exactly one)")
    if measurement is not None and not re.fullmatch(_HEX48, measurement):
        raise click.BadParameter("want 96 lowercase hex digits", param_hint="--measurement")
    if release is not None and not (re.fullmatch(r"[0-9a-f]{64}", release.removeprefix(
            "sha256:")) or Path(release).is_file()):
        raise click.BadParameter("want a release entry file (NAME.release.json) or "
                                 "sha256:<64 lowercase hex>", param_hint="RELEASE")
    key = load_signing_key_file(Path(release_key))
    accepted = [key.public, *(ReleasePublicKey.from_text(read_input(k).decode())
                              for k in accept_keys)]
    url, vkey = _need_log(log_url, log_vkey)
    logged, revocations = _log_releases(url, vkey, witness_policy, accepted)
    if measurement is not None:
        value = bytes.fromhex(measurement)
        revocation = Revocation.of_measurement(value, reason)
        hit = [(i, v) for i, v in logged if value in v.statement.measurements.listed()]
        click.echo(f"revoking build {measurement}: every release listing it is refused, "
                   f"including releases logged later; logged now ({len(hit)}):")
    else:
        target = _release_target(release, accepted, logged)
        assert isinstance(target.statement, Release)
        listed = target.statement.measurements.listed()
        revocation = Revocation.of_statement(target.statement_digest, reason)
        hit = [(i, v) for i, v in logged if v.statement_digest != target.statement_digest
               and listed & v.statement.measurements.listed()]
        click.echo(f"revoking release statement sha256:{target.statement_digest.hex()} (every "
                   f"entry carrying it). Other logged releases sharing its measurements "
                   f"({len(hit)}) STAY VALID unless the build itself is revoked (attest revoke "
                   f"--measurement HEX):")
    for index, v in hit:
        click.echo(_describe_release(index, v, revocations))
    entry = sign_statement(revocation, [key]).encode()
    proof = _submit(entry, url, vkey, witness_policy, _auth(token_file, submitter,
                                                               submitter_key))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"revocation-{revocation.value.hex()[:16]}"
    (out_dir / f"{stem}.json").write_bytes(entry)
    (out_dir / f"{stem}.tlog-proof").write_bytes(proof)
    click.echo(f"revoked {revocation.describe()}: revocation entry "
               f"sha256:{entry_digest(entry).hex()} -> {out_dir / stem}.json")
