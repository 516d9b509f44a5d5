"""NVIDIA Reference Integrity Manifests (RIMs): ISO/IEC 19770-2 SWID tags with TCG RIM fields.

A RIM lists the golden SHA-384 value(s) of each measurement index for one driver or VBIOS
version (TCG "Reference Integrity Manifest Information Model" 1.01, SWID binding;
docs/formats.md "NVIDIA GPU evidence")::

    <SoftwareIdentity tagId=.. name=.. version=..>
      <Meta colloquialVersion="550.90.07" product="GH100" .../>
      <Payload>
        <Resource type="Measurement" index="0" active="True" alternatives="2"
                  sha384:Hash0="<96 hex>" sha384:Hash1="<96 hex>" name=".." size="48"/>
        ...
      </Payload>
      <ds:Signature>...</ds:Signature>   (XML-DSig; verified by verifier/gpu/rim_verify.py)
    </SoftwareIdentity>

This module only reads the structure (no signature, no clock): stdlib XML with DTDs and
entity declarations refused before parsing (no entity expansion, no external fetches).
RIM index i corresponds to SPDM block index i + 1.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from transparency_log.common.errors import FormatError

CHECK = "gpu.rim.format"
SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
SHA384_NS = "http://www.w3.org/2001/04/xmlenc#sha384"
MAX_RIM_SIZE = 1 << 20
MAX_MEASUREMENTS = 256
MAX_ALTERNATIVES = 16
HASH_SIZE = 48
TCG_NS = ("https://trustedcomputinggroup.org/resource/"
          "tcg-reference-integrity-manifest-rim-information-model/")
_HEX = re.compile(r"[0-9a-fA-F]+")
_DEC = re.compile(r"0|[1-9][0-9]{0,5}")


@dataclass(frozen=True)
class RimMeasurement:
    """One golden measurement: 0-based RIM ``index``, any of ``alternatives`` may match."""

    index: int
    active: bool
    alternatives: tuple[bytes, ...]
    name: str
    size: int = HASH_SIZE


@dataclass(frozen=True)
class Rim:
    """The parts of a RIM the verifier judges."""

    tag_id: str
    name: str
    version: str  # Meta colloquialVersion: driver "550.90.07" or VBIOS "96.00.9F.00.01"
    product: str
    manufacturer_id: str
    measurements: tuple[RimMeasurement, ...]

    def active(self) -> dict[int, RimMeasurement]:
        return {m.index: m for m in self.measurements if m.active}


def _refuse_dtd(data: bytes) -> None:
    if len(data) > MAX_RIM_SIZE:
        raise FormatError(CHECK, "RIM over the size cap", field="RIM", got=len(data),
                          want=f"<= {MAX_RIM_SIZE}")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise FormatError(CHECK, "DTDs and entity declarations are refused", field="RIM")


def _parse_xml(data: bytes) -> ET.Element:
    _refuse_dtd(data)
    try:
        return ET.fromstring(data)  # noqa: S314 (DTDs refused above: no entity expansion)
    except ET.ParseError as err:
        raise FormatError(CHECK, f"not well-formed XML: {err}", field="RIM") from None


def parse_rim(data: bytes) -> Rim:
    """Parse a RIM's structure (signature ignored here; verify it first)."""
    root = _parse_xml(data)
    if root.tag != f"{{{SWID_NS}}}SoftwareIdentity":
        raise FormatError(CHECK, "not a SWID tag", field="SoftwareIdentity", got=root.tag)
    meta = _one(root, "Meta")
    payload = _one(root, "Payload")
    measurements: list[RimMeasurement] = []
    seen: set[int] = set()
    for res in payload.findall(f"{{{SWID_NS}}}Resource"):
        if res.get("type") != "Measurement":
            continue
        m = _measurement(res)
        if m.index in seen:
            raise FormatError(CHECK, "measurement index repeated", field="Resource.index",
                              got=m.index)
        seen.add(m.index)
        measurements.append(m)
        if len(measurements) > MAX_MEASUREMENTS:
            raise FormatError(CHECK, "too many measurements", field="Payload",
                              want=f"<= {MAX_MEASUREMENTS}")
    tcg = TCG_NS
    return Rim(
        tag_id=_attr(root, "tagId"),
        name=_attr(root, "name"),
        version=_attr(meta, "colloquialVersion"),
        product=meta.get("product", ""),
        manufacturer_id=meta.get(f"{{{tcg}}}PlatformManufacturerId", ""),
        measurements=tuple(measurements),
    )


def _one(root: ET.Element, name: str) -> ET.Element:
    found = root.findall(f"{{{SWID_NS}}}{name}")
    if len(found) != 1:
        raise FormatError(CHECK, f"expected exactly one {name}", field=name, got=len(found),
                          want=1)
    return found[0]


def _attr(el: ET.Element, name: str) -> str:
    value = el.get(name)
    if value is None:
        raise FormatError(CHECK, "attribute missing", field=name)
    return value


def _int(el: ET.Element, name: str) -> int:
    value = _attr(el, name)
    if not _DEC.fullmatch(value):
        raise FormatError(CHECK, "not a canonical decimal", field=f"Resource.{name}",
                          got=value)
    return int(value)


def _measurement(res: ET.Element) -> RimMeasurement:
    index = _int(res, "index")
    count = _int(res, "alternatives")
    size = _int(res, "size")
    active_text = _attr(res, "active")
    if active_text not in ("True", "False"):
        raise FormatError(CHECK, "active must be True or False", field="Resource.active",
                          got=active_text)
    if not 1 <= count <= MAX_ALTERNATIVES:
        raise FormatError(CHECK, "alternatives out of range", field="Resource.alternatives",
                          got=count, want=f"1..{MAX_ALTERNATIVES}")
    hashes = []
    for i in range(count):
        text = res.get(f"{{{SHA384_NS}}}Hash{i}")
        if text is None or len(text) != 2 * size or not _HEX.fullmatch(text):
            raise FormatError(CHECK, f"Hash{i} missing or not {size} bytes of hex",
                              field=f"Resource[{index}].Hash{i}", got=text)
        hashes.append(bytes.fromhex(text))
    present = sum(1 for k in res.attrib if k.startswith(f"{{{SHA384_NS}}}Hash"))
    if present != count:
        raise FormatError(CHECK, "more hashes than alternatives",
                          field=f"Resource[{index}].alternatives", got=count)
    return RimMeasurement(index=index, active=active_text == "True",
                          alternatives=tuple(hashes), name=res.get("name", ""), size=size)


def rim_to_xml(rim: Rim) -> bytes:
    """Serialize an (unsigned) RIM; the simulator signs the result with XML-DSig."""
    tcg = TCG_NS
    ET.register_namespace("", SWID_NS)
    ET.register_namespace("sha384", SHA384_NS)
    ET.register_namespace("rim", tcg)
    root = ET.Element(f"{{{SWID_NS}}}SoftwareIdentity", {
        "corpus": "false", "name": rim.name, "patch": "false", "supplemental": "false",
        "tagId": rim.tag_id, "version": "1.0", "tagVersion": "0"})
    ET.SubElement(root, f"{{{SWID_NS}}}Entity",
                  {"name": "NVIDIA Corporation", "role": "softwareCreator tagCreator"})
    ET.SubElement(root, f"{{{SWID_NS}}}Meta", {
        "colloquialVersion": rim.version, "product": rim.product,
        f"{{{tcg}}}PlatformManufacturerId": rim.manufacturer_id})
    payload = ET.SubElement(root, f"{{{SWID_NS}}}Payload")
    for m in rim.measurements:
        attrs = {"type": "Measurement", "index": str(m.index),
                 "active": "True" if m.active else "False",
                 "alternatives": str(len(m.alternatives)), "name": m.name, "size": str(m.size)}
        for i, h in enumerate(m.alternatives):
            attrs[f"{{{SHA384_NS}}}Hash{i}"] = h.hex()
        ET.SubElement(payload, f"{{{SWID_NS}}}Resource", attrs)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False)
