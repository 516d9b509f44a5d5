"""The worked examples in docs/formats.md ("Evidence bundle (CBOR)", "Binding") stay true."""

from __future__ import annotations

import re
from pathlib import Path

from attest.binding import (
    bundle_gpu_nonce,
    bundle_report_data,
    gpu_digest,
    gpu_encoding,
    node_key_digest,
    ohttp_keys_digest,
)
from attest.formats.bundle import GpuState, decode_bundle, encode_bundle
from tests.support.bundle_samples import docs_example

DOC = (Path(__file__).resolve().parent.parent / "docs" / "formats.md").read_text()


def _block_after(marker: str) -> str:
    start = DOC.index(marker)
    match = re.compile(r"```\n(.*?)\n```", re.S).search(DOC, start)
    assert match is not None
    return match.group(1)


def test_encoding_example_is_byte_exact() -> None:
    data = encode_bundle(docs_example())
    listing = _block_after(f"Encoding, {len(data)} bytes")
    hex_text = "".join(line.split("#")[0].replace(" ", "") for line in listing.splitlines())
    assert bytes.fromhex(hex_text) == data
    assert decode_bundle(data) == docs_example()


def test_binding_example_values() -> None:
    bundle = docs_example()
    block = _block_after("For the worked example above")
    rd = bundle_report_data(bundle).hex()
    state, gpus = bundle.gpu_state, bundle.gpu_evidence
    assert f"gpu_encoding    {gpu_encoding(state, gpus).hex()}\n" in block
    assert f"gpu_digest      {gpu_digest(state, gpus).hex()}\n" in block
    assert f"node_key_digest {node_key_digest(bundle.node_key).hex()}\n" in block
    assert f"ohttp_keys_digest {ohttp_keys_digest(bundle.ohttp_keys).hex()}\n" in block
    assert f"REPORTDATA      {rd[:64]}\n                {rd[64:]}\n" in block
    (gpu,) = gpus
    assert block.endswith(f"GPU nonce({gpu.index})    {bundle_gpu_nonce(bundle, gpu.index).hex()}")


def test_no_gpu_encoding_in_the_text() -> None:
    assert "`gpu_encoding` = `83 66 616273656e74 00 80`" in DOC
    assert gpu_encoding(GpuState(), []) == bytes.fromhex("8366616273656e740080")
