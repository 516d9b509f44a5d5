"""Getting RIMs: stapled by the node, from a directory, from a cache, or from NVIDIA's RIM
service (``GET {base}/v1/rim/{id}`` -> JSON ``{"id": .., "rim": base64(SWID XML), ...}``).

The RIM ids follow NVIDIA's naming: ``NV_GPU_DRIVER_GH100_<driver version>`` and
``NV_GPU_VBIOS_<project>_<project SKU>_<chip SKU>_<VBIOS version without dots>``. What is
fetched is untrusted until :func:`verifier.gpu.rim_verify.verify_rim` checked it; the cache
therefore stores raw documents. Offline mode is ``fetch=None``: stapled, directory and cache
only, and a RIM found nowhere is a FetchError (never "valid"). Lives in ``attest`` so the
node agent can staple what it fetches; the verifier uses it too.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from attest.collateral.kds_fetch import SourceHook
from transparency_log.common.errors import FetchError, FormatError
from transparency_log.common.http_fetch import DiskCache, Fetch

NVIDIA_RIM_SERVICE = "https://rim.attestation.nvidia.com/v1/rim/"
MAX_RIM_JSON = 4 << 20


def driver_rim_id(driver_version: str, arch: str = "GH100") -> str:
    return f"NV_GPU_DRIVER_{arch}_{driver_version}"


def vbios_rim_id(project: str, project_sku: str, chip_sku: str, vbios_version: str) -> str:
    return (f"NV_GPU_VBIOS_{project}_{project_sku}_{chip_sku}_"
            f"{vbios_version.replace('.', '').upper()}")


def decode_rim_service_reply(body: bytes, rim_id: str) -> bytes:
    """The SWID XML inside the RIM service's JSON reply."""
    if len(body) > MAX_RIM_JSON:
        raise FormatError("gpu.rim.fetch", "RIM service reply too large", field=rim_id,
                          got=len(body), want=f"<= {MAX_RIM_JSON}")
    try:
        reply = json.loads(body)
        encoded = reply["rim"]
        if not isinstance(encoded, str):
            raise TypeError("rim is not a string")
        return base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise FormatError("gpu.rim.fetch", f"malformed RIM service reply: {err}",
                          field=rim_id) from None


@dataclass
class RimSource:
    """Where RIMs come from, in order: stapled, directory (``<id>.swidtag`` or ``<id>.xml``),
    disk cache, then the service through ``fetch`` (absent in offline mode)."""

    fetch: Fetch | None = None
    base_url: str = NVIDIA_RIM_SERVICE
    cache: DiskCache | None = None
    directory: Path | None = None
    stapled: Mapping[str, bytes] = field(default_factory=dict)
    on_get: SourceHook | None = None  # (RIM id, "cache" | "fetched", document)

    def get(self, rim_id: str) -> bytes:
        if rim_id in self.stapled:
            return self.stapled[rim_id]
        if self.directory is not None:
            for suffix in (".swidtag", ".xml"):
                path = self.directory / f"{rim_id}{suffix}"
                if path.is_file():
                    return path.read_bytes()
        key = f"nvidia-rim/{rim_id}"
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            if self.on_get is not None:
                self.on_get(rim_id, "cache", hit)
            return hit
        if self.fetch is None:
            raise FetchError("gpu.rim.fetch", "RIM not stapled, not in the directory or cache, "
                             "and offline", field=rim_id)
        url = self.base_url.rstrip("/") + "/" + rim_id
        reply = self.fetch(url)
        if reply.status == 404:
            raise FetchError("gpu.rim.fetch", "the RIM service has no such RIM", field=rim_id,
                             got="HTTP 404")
        if reply.status != 200:
            raise FetchError("gpu.rim.fetch", f"HTTP {reply.status}", field=rim_id)
        xml = decode_rim_service_reply(reply.body, rim_id)
        if self.cache is not None:
            self.cache.put(key, xml)
        if self.on_get is not None:
            self.on_get(rim_id, "fetched", xml)
        return xml
