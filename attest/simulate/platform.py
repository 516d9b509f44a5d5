"""A simulated node: :class:`SimulatedPlatform` implements :class:`attest.platform.Platform`
with the vendor simulators (DESIGN.md, "Simulated hardware").

- ``cpu="sev-snp"``: a Genoa guest (:class:`attest.simulate.snp.SimulatedAmd`): v3 reports
  signed by a VCEK, with the VCEK/ASK/ARK certificates and an ARK-signed CRL stapled.
- ``cpu="tdx"``: a TDX guest (:class:`attest.simulate.tdx.IntelSimulator`): v4 quotes with
  the PCK chain inside, and TCB info, QE identity and both CRLs stapled.
- ``gpus=N``: N Hopper GPUs (:class:`attest.simulate.gpu.SimulatedGpu`) behind a fake NVML
  (:class:`~attest.simulate.gpu.FakeNvml`), collected by the real NVML collector; the GPUs
  share one device root and one measurement set, so one driver RIM and one VBIOS RIM
  (signed by a fake RIM PKI) serve them all; an OCSP answer is stapled for every non-root
  certificate of every chain.

Every certificate and key is a test key: a verifier trusts them only when it is handed
:meth:`SimulatedPlatform.trust` explicitly (and the client policy says
``unsafe_allow_simulated_hardware = true``). :class:`SimulatedTrust` serialises to JSON so
``attest agent --simulate`` can publish it for the demo's client.

Knobs make the negative cases a client must refuse (each changes one thing): ``debug``,
``tcb_below_minimum``, ``cc_mode`` (``"off"``: NVML refuses, collection fails; for a bundle
that *claims* CC off use ``claim_cc_mode``), ``missing_gpu``, ``duplicate_gpu`` (the fake NVML
shows GPU 0 at every index, as a host presenting one device N times would: each report is
genuine and bound to its own index, only ``gpu.device.distinct`` can refuse it), ``forge``
(``"cpu"``: report or quote signed by a wrong key; ``"gpu"``: a GPU report signed by a wrong
key) and
``fail_collect`` (the CPU device errors, as a broken guest driver would).

``bare=True`` staples nothing (no SNP certificate table, no TDX collateral, no RIMs or OCSP),
like hardware whose node must fetch its collateral from the vendor services:
:meth:`SimulatedPlatform.fake_vendor_service` serves them (KDS, PCS, RIM, OCSP on one port)
for :class:`attest.collateral.stapler.CollateralStapler`.

Collateral names in the bundle (docs/formats.md, "Evidence bundle: collateral names"):
``amd/<product>/crl``, ``intel/<role>``, ``nvidia/rim/driver/<version>``,
``nvidia/rim/vbios/<version>`` (lowercase) and ``nvidia/ocsp/<sha256 of the certificate's
DER, hex>``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from attest.collect.nvml_gpu import NonceFor, collect_gpu_evidence
from attest.formats.bundle import GpuEvidence, GpuState, SnpEvidence, TdxEvidence
from attest.formats.snp_report import GENOA, POLICY_DEBUG, encode_tcb
from attest.platform import CPU_SEV_SNP, CPU_TDX, CpuCollection, GpuCollection
from attest.simulate import gpu as simgpu
from attest.simulate.snp import SimulatedAmd, der, pem
from attest.simulate.tdx import SIM_TD_ATTRIBUTES, IntelSimulator
from transparency_log.common.errors import FetchError

__all__ = [
    "SIM_NOW",
    "SimulatedPlatform",
    "SimulatedTrust",
    "simulated_measurements",
]

#: The default clock of simulated collateral (tests pin it; the agent passes the real time).
SIM_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FORGE_TARGETS = ("cpu", "gpu")
CC_MODES = ("on", "off", "devtools")
_AMD_CACHE: dict[tuple[bytes, str], SimulatedAmd] = {}


def _sha384(*parts: bytes) -> bytes:
    return hashlib.sha384(b"/".join(parts)).digest()


def simulated_measurements(seed: bytes) -> dict[str, bytes]:
    """The launch measurements of the simulated guest image named by ``seed``: SNP
    ``measurement`` and TDX ``mrtd``, ``rtmr0``..``rtmr2`` (48 bytes each)."""
    return {name: _sha384(b"attestlog-sim-launch", seed, name.encode())
            for name in ("measurement", "mrtd", "rtmr0", "rtmr1", "rtmr2")}


def _amd(seed: bytes, product: str) -> SimulatedAmd:
    """One simulated AMD per (seed, product) in this process (RSA keys are slow to make)."""
    key = (seed, product)
    if key not in _AMD_CACHE:
        _AMD_CACHE[key] = SimulatedAmd.create(product)
    return _AMD_CACHE[key]


def _pem_text(data: bytes) -> str:
    return data.decode("ascii")


@dataclass(frozen=True)
class SimulatedTrust:
    """What a verifier must be handed to accept a simulated platform's evidence (PEM text).

    ``amd_product`` names the AMD product whose ``amd_ark``/``amd_ask``/``amd_asvk`` these
    are; ``intel_root`` is the fake Intel SGX root; ``nvidia_device_root`` and
    ``nvidia_rim_root`` the fake NVIDIA roots. Absent parts are empty.
    """

    amd_product: str = ""
    amd_ark: bytes = b""
    amd_ask: bytes = b""
    amd_asvk: bytes = b""
    intel_root: bytes = b""
    nvidia_device_root: bytes = b""
    nvidia_rim_root: bytes = b""

    FIELDS = ("amd_product", "amd_ark", "amd_ask", "amd_asvk", "intel_root",
              "nvidia_device_root", "nvidia_rim_root")

    def to_json(self) -> bytes:
        value = {"simulated": True,
                 **{k: v if isinstance(v := getattr(self, k), str) else _pem_text(v)
                    for k in self.FIELDS}}
        return json.dumps(value, indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> SimulatedTrust:
        from transparency_log.common.errors import FormatError

        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise FormatError("simulate.trust", f"not JSON: {err}", field="trust") from None
        if not isinstance(value, dict) or value.get("simulated") is not True \
                or set(value) != {"simulated", *cls.FIELDS} \
                or not all(isinstance(value[k], str) for k in cls.FIELDS):
            raise FormatError("simulate.trust", "not a simulated-trust document",
                              field="trust", want=sorted(("simulated", *cls.FIELDS)))
        return cls(value["amd_product"], *(value[k].encode("ascii") for k in cls.FIELDS[1:]))


@dataclass
class SimulatedPlatform:
    """A simulated SEV-SNP or TDX guest with ``gpus`` simulated H100s (module docstring)."""

    cpu: str = CPU_SEV_SNP
    gpus: int = 1
    cc_mode: str = "on"
    seed: bytes = b"attestlog-sim"
    now: datetime = SIM_NOW
    measurements: dict[str, bytes] | None = None
    product: str = GENOA
    gpu_driver: str = "550.90.07"
    gpu_vbios: str = "96.00.9F.00.01"
    debug: bool = False
    tcb_below_minimum: bool = False
    claim_cc_mode: str | None = None
    missing_gpu: bool = False
    duplicate_gpu: bool = False
    forge: str | None = None
    fail_collect: bool = False
    bare: bool = False
    simulated: bool = field(default=True, init=False)
    _rims: dict[str, bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.cpu not in (CPU_SEV_SNP, CPU_TDX):
            raise ValueError(f"cpu must be {CPU_SEV_SNP!r} or {CPU_TDX!r}, got {self.cpu!r}")
        if self.cc_mode not in CC_MODES:
            raise ValueError(f"cc_mode must be one of {CC_MODES}, got {self.cc_mode!r}")
        if self.forge not in (None, *FORGE_TARGETS):
            raise ValueError(f"forge must be one of {FORGE_TARGETS}, got {self.forge!r}")
        if not 0 <= self.gpus <= 8:
            raise ValueError("gpus must be 0..8")
        if self.measurements is None:
            self.measurements = simulated_measurements(self.seed)
        self.amd = _amd(self.seed, self.product) if self.cpu == CPU_SEV_SNP else None
        self.intel = IntelSimulator(now=self.now, seed=self.seed + b"/intel") \
            if self.cpu == CPU_TDX else None
        shared = simgpu.make_chain(self.seed + b"/nvidia", simgpu.DEVICE_ROLES,
                                   ocsp_url=simgpu.OCSP_URL)
        common = simgpu.default_measurements(self.seed + b"/gpu-firmware")
        self.sim_gpus = [simgpu.SimulatedGpu(seed=self.seed + f"/gpu{i}".encode(),
                                             driver_version=self.gpu_driver,
                                             vbios_version=self.gpu_vbios,
                                             measurements=list(common),
                                             pki=_device_pki(self.seed + f"/gpu{i}".encode(),
                                                             shared))
                         for i in range(self.gpus)]
        self.device_root = shared.root
        self.rim_pki = simgpu.make_rim_pki(self.seed + b"/nvidia-rim")

    # ------------------------------------------------------------------ Platform
    def describe(self) -> str:
        return (f"SIMULATED {self.cpu} guest with {self.gpus} simulated GPU(s), "
                f"CC mode {self.cc_mode}")

    def collect_gpus(self, nonce_for: NonceFor) -> GpuCollection:
        if not self.sim_gpus:
            return GpuCollection(GpuState("absent", 0))
        sims = [self.sim_gpus[0]] * len(self.sim_gpus) if self.duplicate_gpu else self.sim_gpus
        nvml = simgpu.FakeNvml(gpus=sims, cc_feature=int(self.cc_mode != "off"),
                               devtools=int(self.cc_mode == "devtools"),
                               driver_version=self.gpu_driver)
        got = collect_gpu_evidence(nonce_for, nvml)  # the real collector, on a fake NVML
        rims = self._signed_rims()
        driver_name = f"nvidia/rim/driver/{self.gpu_driver.lower()}"
        vbios_name = f"nvidia/rim/vbios/{self.gpu_vbios.lower()}"
        collateral = {driver_name: rims["driver"], vbios_name: rims["vbios"]}
        if self.bare:
            return GpuCollection(GpuState(self.claim_cc_mode or got.cc.mode, len(got.gpus)),
                                 tuple(GpuEvidence(g.index, g.report, g.chain_pem)
                                       for g in got.gpus))
        items = []
        for g, sim in zip(got.gpus, sims, strict=True):
            report = g.report
            if self.forge == "gpu" and g.index == 0:
                report = sim.report(g.nonce, key=simgpu.derive_key(b"forger", "gpu"))
            ocsp_names = []
            for name, answer in self._ocsp(sim.device_pki):
                collateral[name] = answer
                ocsp_names.append(name)
            items.append(GpuEvidence(g.index, report, g.chain_pem,
                                     {"driver": driver_name, "vbios": vbios_name},
                                     tuple(ocsp_names)))
        attached = len(items)
        if self.missing_gpu:
            dropped = items.pop()
            for name in dropped.ocsp:
                if not any(name in it.ocsp for it in items):
                    collateral.pop(name)
        return GpuCollection(GpuState(self.claim_cc_mode or got.cc.mode, attached),
                             tuple(items), collateral)

    def collect_cpu(self, report_data: bytes) -> CpuCollection:
        if self.fail_collect:
            raise FetchError("snp.collect.device" if self.cpu == CPU_SEV_SNP
                             else "tdx.collect", "simulated device failure: the guest "
                             "driver returned EIO", field="device")
        if self.cpu == CPU_SEV_SNP:
            return self._snp(report_data)
        return self._tdx(report_data)

    # ------------------------------------------------------------------ CPU evidence
    def _snp(self, report_data: bytes) -> CpuCollection:
        amd = self.amd
        assert amd is not None and self.measurements is not None
        tcb = amd.default_tcb()
        if self.tcb_below_minimum:
            tcb = encode_tcb(amd.product, boot_loader=2, tee=0, snp=8, microcode=115)
        policy = 0x30000 | ((1 << POLICY_DEBUG) if self.debug else 0)
        rep = replace(amd.report_template(version=3), report_data=report_data,
                      measurement=self.measurements["measurement"], policy=policy,
                      current_tcb=tcb, reported_tcb=tcb, committed_tcb=tcb, launch_tcb=tcb)
        forger = ec.generate_private_key(ec.SECP384R1()) if self.forge == "cpu" else None
        report = amd.sign(rep, forger)
        if self.bare:
            return CpuCollection(SnpEvidence(report))
        certs = {"vcek": der(amd.vcek(tcb)), "ask": der(amd.ask), "ark": der(amd.ark)}
        crl_name = f"amd/{amd.product.lower()}/crl"
        return CpuCollection(SnpEvidence(report, certs, {"crl": crl_name}),
                             {crl_name: amd.crl()})

    def _tdx(self, report_data: bytes) -> CpuCollection:
        intel = self.intel
        assert intel is not None and self.measurements is not None
        attrs = SIM_TD_ATTRIBUTES
        if self.debug:
            attrs = (int.from_bytes(attrs, "little") | 1).to_bytes(8, "little")
        m = self.measurements
        body = intel.body(mrtd=m["mrtd"], rtmr0=m["rtmr0"], rtmr1=m["rtmr1"],
                          rtmr2=m["rtmr2"], td_attributes=attrs, report_data=report_data)
        quote = intel.quote(body=body)
        if self.forge == "cpu":
            forged = replace(quote, signature_data=replace(
                quote.signature_data, signature=bytes(64)))
            quote = forged
        if self.bare:
            return CpuCollection(TdxEvidence(quote.to_bytes()))
        levels = [intel.tcb_level("OutOfDate")] if self.tcb_below_minimum else None
        blobs = {
            "tcb_info": intel.tcb_info(levels=levels),
            "tcb_info_issuer_chain": intel.tcb_signing_chain_pem,
            "qe_identity": intel.qe_identity(),
            "qe_identity_issuer_chain": intel.tcb_signing_chain_pem,
            "pck_crl": intel.pck_crl(),
            "pck_crl_issuer_chain": intel.pck_crl_chain_pem,
            "root_crl": intel.root_crl(),
        }
        names = {role: f"intel/{role}" for role in blobs}
        return CpuCollection(TdxEvidence(quote.to_bytes(), names),
                             {names[role]: blob for role, blob in blobs.items()})

    # ------------------------------------------------------------------ GPU collateral
    def _signed_rims(self) -> dict[str, bytes]:
        if self._rims is None:
            driver, vbios = self.sim_gpus[0].rims()
            self._rims = {"driver": simgpu.sign_rim(driver, self.rim_pki),
                          "vbios": simgpu.sign_rim(vbios, self.rim_pki)}
        return self._rims

    def _ocsp(self, pki: simgpu.Pki) -> list[tuple[str, bytes]]:
        """(collateral name, DER OCSP answer) for every non-root certificate of a chain."""
        responder = simgpu.OcspResponder(pki, now=self.now)
        out = []
        certs = pki.certificates
        for cert, issuer in itertools.pairwise(certs):
            request = ocsp.OCSPRequestBuilder().add_certificate(
                cert, issuer, hashes.SHA384()).build()
            fp = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
            out.append((f"nvidia/ocsp/{fp}",
                        responder.respond(request.public_bytes(serialization.Encoding.DER))))
        return out

    # ------------------------------------------------------------------ trust
    def trust(self) -> SimulatedTrust:
        """The roots a verifier needs for this platform's evidence (never trusted by default)."""
        out = SimulatedTrust(
            nvidia_device_root=self.device_root.public_bytes(serialization.Encoding.PEM),
            nvidia_rim_root=self.rim_pki.root_pem())
        if self.amd is not None:
            out = replace(out, amd_product=self.amd.product, amd_ark=pem(self.amd.ark),
                          amd_ask=pem(self.amd.ask), amd_asvk=pem(self.amd.asvk))
        if self.intel is not None:
            out = replace(out, intel_root=self.intel.root_pem)
        return out

    def fake_nvidia_service(self) -> Any:
        """A FakeService with this platform's RIMs and an OCSP responder (for clients that
        fetch rather than use stapled collateral); run it with ``fake_service.serve``."""
        return simgpu.fake_nvidia_service(self.sim_gpus, self.rim_pki, self.now)

    def fake_vendor_service(self) -> Any:
        """One FakeService answering at the vendors' paths for this platform: AMD KDS
        (``/vcek/..``, ``/vlek/..``), Intel PCS v4 (``/tdx/..``, ``/sgx/..``,
        ``/IntelSGXRootCA.der``), the NVIDIA RIM service (``/v1/rim/..``) and OCSP (any other
        path). Point every service URL of the agent's ``[collateral]`` table at its base."""
        from attest.simulate.fake_kds import fake_kds
        from attest.simulate.fake_service import FakeService

        nvidia = self.fake_nvidia_service()
        kds = fake_kds({self.amd.product: self.amd}) if self.amd is not None else None
        routes = dict(nvidia.routes)
        if self.intel is not None:
            routes.update(self.intel.pcs_routes())

        def other(method: str, target: str, body: bytes) -> Any:
            if kds is not None and target.startswith(("/vcek/", "/vlek/")):
                return kds.handle(method, target, body)
            return nvidia.handle(method, target, body)

        return FakeService(routes, fallback=other)


def _device_pki(seed: bytes, shared: simgpu.Pki) -> simgpu.Pki:
    """A GPU's own FMC leaf and BROM certificates under the shared Provisioner ICA, Identity
    and Device Identity CA (one root for every simulated GPU, as on real hardware)."""
    leaf_role, brom_role = simgpu.DEVICE_ROLES[0], simgpu.DEVICE_ROLES[1]
    ica_role = simgpu.DEVICE_ROLES[2]
    leaf_key = simgpu.derive_key(seed, leaf_role)
    brom_key = simgpu.derive_key(seed, brom_role)
    fwid = hashlib.sha384(seed + b"/fwid").digest()
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        x509.AuthorityInformationAccessOID.OCSP,
        x509.UniformResourceIdentifier(simgpu.OCSP_URL))])
    brom = simgpu._cert(brom_role, brom_key, ica_role, shared.keys[2], ca=True,
                        serial=simgpu._serial(seed, brom_role),
                        extensions=[(aia, False)])
    leaf = simgpu._cert(leaf_role, leaf_key, brom_role, brom_key, ca=False,
                        serial=simgpu._serial(seed, leaf_role),
                        extensions=[(simgpu.dice_tcbinfo(fwid), False), (aia, False)])
    return simgpu.Pki([leaf, brom, *shared.certificates[2:]],
                      [leaf_key, brom_key, *shared.keys[2:]])

