"""``[release.sigstore]`` end to end (issue 16, part 5): a node that staples its release's real
Sigstore bundle is accepted under a policy that requires provenance; without it, with a valid
bundle for another artifact, with a wrong CI identity, or with a bundle whose digest was
rewritten to name this release, it is refused under ``release.sigstore``.

The Sigstore bundle is real (tests/vectors/sigstore/MANIFEST.md): ``bundle_v3_github.whl.sigstore``
signs the rfc8785 0.1.2 wheel (SHA-256 ``c4e92e9e…f201``, production Sigstore) by the GitHub
Actions identity ``trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2``.
The wheel itself is not in the repository, and is not needed: the simulated release lists it as
an artifact by its SHA-256, which is how a release names every artifact, and the bundle is
verified over that digest, offline, against the pinned production trusted root.
"""

from __future__ import annotations

import base64
import json

import pytest

from attest.release.dsse import parse_entry
from attest.release.statement import Artifact, Release, parse_statement
from tests.support.pipeline_support import World, make_world, policy_text
from tests.support.vectors import vector_path
from transparency_log.common.errors import PolicyError, SignatureError, VerificationError
from verifier.policy import Policy, parse_policy
from verifier.result import ACCEPTED, REFUSED, Result
from verifier.transcript import FAIL, PASS

WHEEL_SHA256 = bytes.fromhex("c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201")
WHEEL = Artifact("other", "bundle_v3_github.whl", WHEEL_SHA256)
WHEEL_BUNDLE = vector_path("sigstore", "bundles", "bundle_v3_github.whl.sigstore").read_bytes()
CHECK = "release.sigstore"


pytestmark = pytest.mark.usefixtures("no_network")  # the check runs offline


@pytest.fixture(scope="module")
def wheel_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The release lists the wheel by its SHA-256; the node staples the wheel's bundle."""
    return make_world(tmp_path_factory.mktemp("wheel"), gpus=1, extra_artifacts=(WHEEL,),
                      sigstore_bundle=WHEEL_BUNDLE)


@pytest.fixture(scope="module")
def other_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A release that does not list the wheel, whose node staples the wheel's bundle anyway."""
    return make_world(tmp_path_factory.mktemp("other"), gpus=1, sigstore_bundle=WHEEL_BUNDLE)


def sigstore_policy(world: World, *, signs: str | None = "artifact",
                    ref: str = "refs/tags/v0.1.2") -> Policy:
    root = vector_path("sigstore", "trusted_root", "production.trusted_root.json")
    extra = ('\n[release.sigstore]\nrepository = "trailofbits/rfc8785.py"\n'
             'workflow = ".github/workflows/release.yml"\n'
             f'ref = "{ref}"\ntrusted_root = "{root}"\n')
    if signs is not None:
        extra += f'signs = "{signs}"\n'
    return parse_policy(policy_text(world.fx, extra=extra).encode())


def failed_checks(result: Result) -> set[str]:
    out = {s.check for s in result.transcript.steps if s.result == FAIL}
    if isinstance(result.error, PolicyError):
        out |= {f.check for f in result.error.failures}
    elif result.error is not None:
        out.add(result.error.check)
    return out


def refused_only_by_sigstore(result: Result, error: type[Exception], cause: str) -> None:
    assert result.verdict == REFUSED
    assert isinstance(result.error, error), result.error
    assert failed_checks(result) == {CHECK}, failed_checks(result)
    assert cause in str(result.error), str(result.error)


def test_accepted_with_the_real_bundle_over_a_listed_artifact(wheel_world: World) -> None:
    result = wheel_world.verify(policy=sigstore_policy(wheel_world))
    assert result.verdict == ACCEPTED, result.error
    steps = {s.check: s for s in result.transcript.steps}
    assert {s.result for s in steps.values()} == {PASS}
    assert steps[CHECK].detail == (
        "signed by https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml"
        "@refs/tags/v0.1.2 over artifact other bundle_v3_github.whl")
    assert result.log is not None and result.log.sigstore_san is not None


def test_refused_without_the_bundle(wheel_world: World) -> None:
    stripped = wheel_world.rebundle(sigstore_bundle=None)
    result = wheel_world.verify(stripped, policy=sigstore_policy(wheel_world))
    refused_only_by_sigstore(result, PolicyError, "absent")


def test_the_same_bundle_is_ignored_without_the_policy_table(other_world: World) -> None:
    assert other_world.verify().verdict == ACCEPTED  # the policy does not ask: not judged


def test_refused_with_a_valid_bundle_for_another_artifact(other_world: World) -> None:
    """The wheel's bundle verifies on its own (same root, same identity) but this release
    does not name the wheel: refused, naming the digest it signs."""
    result = other_world.verify(policy=sigstore_policy(other_world))
    refused_only_by_sigstore(result, SignatureError, "release.sigstore.artifact")
    assert WHEEL_SHA256.hex() in str(result.error)


@pytest.mark.parametrize("signs", [None, "statement", "subject"])
def test_refused_when_the_policy_wants_a_stronger_binding(wheel_world: World,
                                                          signs: str | None) -> None:
    """The default, ``statement``, and ``subject`` do not accept a bundle over an artifact."""
    result = wheel_world.verify(policy=sigstore_policy(wheel_world, signs=signs))
    refused_only_by_sigstore(result, SignatureError, "release.sigstore.artifact")


def test_refused_with_a_wrong_identity(wheel_world: World) -> None:
    result = wheel_world.verify(policy=sigstore_policy(wheel_world, ref="refs/tags/v0.1.3"))
    refused_only_by_sigstore(result, VerificationError, "release.sigstore.identity")


def test_refused_when_the_signed_digest_is_rewritten_to_this_release(
        other_world: World) -> None:
    """The attack on the binding: take a real bundle and rewrite the digest it claims to
    sign into the release's image digest (a listed subject), so the binding matches; the
    signature and the Rekor entry are over the wheel, so it must not verify."""
    release = parse_statement(parse_entry(other_world.fx.release_entry).payload)
    assert isinstance(release, Release)
    target = release.subjects[0].sha256
    doc = json.loads(WHEEL_BUNDLE)
    doc["messageSignature"]["messageDigest"]["digest"] = base64.b64encode(target).decode()
    forged = json.dumps(doc).encode()
    result = other_world.verify(other_world.rebundle(sigstore_bundle=forged),
                                policy=sigstore_policy(other_world, signs="subject"))
    refused_only_by_sigstore(result, SignatureError, "Signature is invalid")
    assert "does not name" not in str(result.error)  # the binding matched; the signature not


def test_refused_with_a_malformed_bundle(wheel_world: World) -> None:
    result = wheel_world.verify(wheel_world.rebundle(sigstore_bundle=b'{"mediaType": 1}'),
                                policy=sigstore_policy(wheel_world))
    refused_only_by_sigstore(result, Exception, "release.sigstore.bundle")

