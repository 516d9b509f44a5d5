"""The node agent staples its release's Sigstore bundle (``[release] sigstore_bundles``), and
the client accepts the agent's bundle under a policy that requires provenance (issue 16, part 5).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from attest.agent.config import parse_config
from attest.agent.node_identity import make_node_identity
from attest.agent.release_lookup import ReleaseTracker
from attest.agent.service import NodeAgent, boot_agent
from attest.agent.sigstore_staple import SigstoreStaple
from attest.formats.bundle import decode_bundle
from attest.release.statement import Artifact
from attest.simulate.node_fixture import release_key
from tests.support.pipeline_support import World, make_world, policy_text
from tests.support.vectors import vector_path
from transparency_log.client.log_client import LogClient, directory_source
from transparency_log.common.errors import TrustConfigError
from transparency_log.core.key_types import Verifier
from verifier.policy import parse_policy
from verifier.result import ACCEPTED, REFUSED

BUNDLES = vector_path("sigstore", "bundles")
WHEEL_BUNDLE = BUNDLES / "bundle_v3_github.whl.sigstore"
WHEEL = Artifact("other", "bundle_v3_github.whl", bytes.fromhex(
    "c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"))


def staple_dir(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "sigstore"
    folder.mkdir()
    for name in names:
        shutil.copyfile(BUNDLES / name, folder / (name.split(".sigstore")[0] + ".sigstore.json"))
    return folder


def boot(world: World, staple: SigstoreStaple | None) -> NodeAgent:
    from attest.agent.config import AgentSettings

    fx = world.fx
    platform = fx.platform  # the simulated node whose release the fixture logged
    client = LogClient(directory_source(fx.tiles_dir), Verifier(fx.log_vkey))
    keys = (release_key().public,)
    return boot_agent(platform, make_node_identity(fx.now),
                      lambda ident: ReleaseTracker(client, keys, ident),
                      settings=AgentSettings(), wall=lambda: 0.0, monotonic=lambda: 0.0,
                      sigstore=staple)


def requiring_provenance(world: World) -> str:
    root = vector_path("sigstore", "trusted_root", "production.trusted_root.json")
    return policy_text(world.fx, extra=(
        '\n[release.sigstore]\nrepository = "trailofbits/rfc8785.py"\n'
        'workflow = ".github/workflows/release.yml"\nref = "refs/tags/v0.1.2"\n'
        f'trusted_root = "{root}"\nsigns = "artifact"\n'))


@pytest.fixture(scope="module")
def wheel_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("wheel"), gpus=1, extra_artifacts=(WHEEL,))


def test_the_agent_staples_the_bundle_over_its_release_and_the_client_accepts(
        wheel_world: World, tmp_path: Path) -> None:
    # The folder also holds a bundle over an unrelated artifact: the agent picks by digest.
    staple = SigstoreStaple.load(staple_dir(tmp_path, "bundle_v3_github.whl.sigstore",
                                            "bundle_v3.txt.sigstore"))
    agent = boot(wheel_world, staple)
    nonce = os.urandom(48)
    data = agent.bundle(nonce)
    assert decode_bundle(data).sigstore_bundle == WHEEL_BUNDLE.read_bytes()
    policy = parse_policy(requiring_provenance(wheel_world).encode())
    result = wheel_world.verify(data, nonce=nonce, policy=policy)
    assert result.verdict == ACCEPTED, result.error


def test_an_agent_without_a_matching_bundle_staples_none_and_is_refused(
        wheel_world: World, tmp_path: Path) -> None:
    agent = boot(wheel_world, SigstoreStaple.load(staple_dir(tmp_path,
                                                             "bundle_v3.txt.sigstore")))
    nonce = os.urandom(48)
    data = agent.bundle(nonce)
    assert decode_bundle(data).sigstore_bundle is None
    result = wheel_world.verify(data, nonce=nonce,
                                policy=parse_policy(requiring_provenance(wheel_world).encode()))
    assert result.verdict == REFUSED and result.error is not None
    assert result.error.check == "release.sigstore"


def test_a_folder_with_a_non_message_signature_bundle_stops_the_boot(tmp_path: Path) -> None:
    folder = staple_dir(tmp_path, "a.dsse.staging-rekor-v2.txt.sigstore.json")
    with pytest.raises(TrustConfigError) as err:
        SigstoreStaple.load(folder)
    assert err.value.check == "agent.sigstore"
    (folder / "junk.sigstore.json").write_bytes(b"")
    with pytest.raises(TrustConfigError):
        SigstoreStaple.load(folder)
    with pytest.raises(TrustConfigError):
        SigstoreStaple.load(tmp_path / "missing")


def test_config_names_the_folder(tmp_path: Path) -> None:
    pub = release_key().public.to_text().strip()
    text = (f'state_dir = "s"\n[log]\nurl = "u"\nvkey = "v"\n[release]\nkeys = ["{pub}"]\n'
            'sigstore_bundles = "releases"\n')
    assert parse_config(text.encode(), tmp_path).sigstore_bundles == tmp_path / "releases"
    plain = text.replace('sigstore_bundles = "releases"\n', "")
    assert parse_config(plain.encode(), tmp_path).sigstore_bundles is None
    with pytest.raises(TrustConfigError) as err:
        parse_config(text.replace('"releases"', "3").encode(), tmp_path)
    assert err.value.field == "release.sigstore_bundles"
