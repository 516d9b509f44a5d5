"""attestlog end to end on one machine (`make demo`): every process on 127.0.0.1, simulated
hardware, embedded defaults. Finishes in well under a minute and stops every process it
started.

The story:
 1. a release log (SQLite, `tlog serve`) with two witnesses (`tlog witness serve`) that must
    both cosign every checkpoint;
 2. CI publishes build A (`attest publish`: signed statement -> log -> cosigned tlog-proof);
    build B is signed but never published;
 3. node A runs build A (`attest agent --simulate`) and starts; node B runs build B and
    REFUSES TO START (its measurement is not in the log); we force it up with the loudly
    labelled dev flag `--unsafe-serve-unlogged`, as a malicious operator could;
 4. a client verifies both nodes (`verifier node URL`: every signature, certificate chain,
    binding, the log evidence, the policy, and the TLS key): A is accepted, B refused
    (`log.inclusion`);
 5. a private request to node A (`verifier request`): a Privacy Pass token from the issuer
    (`attest issuer serve`), OHTTP to the HPKE key node A's evidence binds, through an
    oblivious relay (`attest relay`) and an untrusted router (`attest router`) that checks
    and spends the token; node A's gateway decrypts and asks its echo backend;
 6. build A is revoked (`attest revoke`); the client now refuses A too (`release.revoked`).

With ``ATTESTLOG_DEMO_EAR=1`` (or ``--ear``) each verdict of step 4 and 6 is also written as
an EAR (IETF RATS attestation result, a JWT signed by a verifier key made here) and shown by
``verifier ear verify`` (docs/ear.md).

Everything here is SIMULATED hardware (attest.simulate): the policy says
`unsafe_allow_simulated_hardware = true`, which no production policy may.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ORIGIN = "log.attestlog.test/releases"
SHOW_EAR = os.environ.get("ATTESTLOG_DEMO_EAR") == "1" or "--ear" in sys.argv[1:]
GPU_DRIVER, GPU_VBIOS = "550.90.07", "96.00.9F.00.01"


def say(text: str = "") -> None:
    print(text, flush=True)


def step(n: int, title: str) -> None:
    say(f"\n== {n}. {title}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str,
                  timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening on port {port}")


class Processes:
    """Starts the long-running services and stops every one of them at the end."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        say(f"   $ {' '.join(_short(a) for a in argv)} &")
        log = open(self.work / f"{name}.log", "wb")
        proc = subprocess.Popen([str(BIN / argv[0]), *argv[1:]], stdout=log,
                                stderr=subprocess.STDOUT, cwd=self.work)
        self.procs.append((name, proc))
        return proc

    def stop(self, name: str) -> None:
        for n, p in self.procs:
            if n == name and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(10)

    def stop_all(self) -> None:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log_of(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text(errors="replace")


def _short(arg: str) -> str:
    return arg if len(arg) <= 60 else arg[:28] + "..." + arg[-20:]


def run(argv: Sequence[str], cwd: Path, *, check: bool = True,
        show: bool = True) -> subprocess.CompletedProcess[str]:
    if show:
        say(f"   $ {' '.join(_short(a) for a in argv)}")
    out = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                         cwd=cwd, timeout=60)
    if check and out.returncode != 0:
        raise RuntimeError(f"{argv[0]} {argv[1]} failed ({out.returncode}):\n"
                           f"{out.stdout}{out.stderr}")
    return out


# --------------------------------------------------------------------------- the client

def verify_node(name: str, url: str, work: Path, *, trust: str, log_url: str,
                show_checks: bool = False) -> tuple[bool, str]:
    """The client: `verifier node URL` fetches a fresh bundle for a random nonce over HTTPS,
    verifies every signature, chain, binding, the log evidence (with a mirror of the log for
    revocations) and the policy, and pins the node's TLS key. Returns (accepted, verdict)."""
    argv = ["verifier", "node", url, "--policy", "client-policy.toml", "--simulated-trust",
            trust, "--state", "client-state", "--log-url", log_url]
    ear = f"{name.replace(' ', '-')}.ear"
    if SHOW_EAR:
        if not (work / "ear-key.pem").exists():
            run(["verifier", "ear", "keygen", "--out", "ear-key.pem"], work)
        argv += ["--ear", ear, "--ear-key", "ear-key.pem"]
    out = run(argv, work, check=False)
    lines = out.stdout.rstrip().splitlines()
    # the check table, the verdict line, then the one-liner `OK: URL` / `FAIL: URL: ...`
    at = max((i for i, line in enumerate(lines) if line.startswith("verdict:")), default=None)
    if show_checks and at is not None:
        say("\n".join("   " + line for line in lines[:at]))
    verdict = lines[at] if at is not None else out.stderr.strip()
    check = verdict.rsplit(" ", 1)[-1]
    errors = [line.strip() for line in out.stderr.splitlines() if line.strip()]
    refusal = next((e for e in errors if e.startswith(check)), errors[-1] if errors else "")
    accepted = out.returncode == 0
    say(f"   {name}: {verdict}" + ("" if accepted else f"\n      {refusal}"))
    if SHOW_EAR:
        shown = run(["verifier", "ear", "verify", ear, "--key", "ear-key.pem.pub"], work,
                    check=False)
        say(f"      EAR {work / ear}:")
        say("\n".join("        " + line for line in
                      (shown.stdout + shown.stderr).rstrip().splitlines()))
    return accepted, verdict + " " + refusal


def private_request(procs: Processes, work: Path, node_url: str, trust: str,
                    log_url: str) -> None:
    """Issue 13's path on 127.0.0.1: a Privacy Pass issuer (token type 2), an untrusted router
    that checks and spends the token, an oblivious relay, and node A's OHTTP gateway in front
    of the echo backend. The client verifies node A's evidence, encapsulates to the HPKE key
    that evidence binds, and decrypts the answer; relay and router see only ciphertext."""
    run(["attest", "issuer", "keygen", "--out", "issuer.key"], work)
    account = os.urandom(32).hex()
    (work / "account.token").write_text(account)
    ports = {name: free_port() for name in ("issuer", "router", "relay")}
    issuer_url = f"http://127.0.0.1:{ports['issuer']}"
    (work / "issuer.toml").write_text(
        f'listen = "127.0.0.1:{ports["issuer"]}"\nprivate_key = "issuer.key"\n'
        f'request_uri = "{issuer_url}/token-request"\n'
        f'[accounts]\ndemo = "{hashlib.sha256(account.encode()).hexdigest()}"\n')
    token_key = (work / "issuer.vkey").read_text().strip()
    # node A's certificate is self-signed for its attested key: the router trusts it by file
    (work / "router.toml").write_text(
        f'listen = "127.0.0.1:{ports["router"]}"\norigin = "router.attestlog.test"\n'
        f'nodes_ca_file = "node-a/node-cert.pem"\n'
        f'[issuer]\nname = "issuer.attestlog.test"\ntoken_key = "{token_key}"\n'
        f'directory = "{issuer_url}/.well-known/private-token-issuer-directory"\n'
        f'[spent_tokens]\nbackend = "sqlite"\npath = "spent.sqlite"\n'
        f'[[nodes]]\nid = "node-a"\nurl = "{node_url}"\ngpus = 1\n')
    (work / "relay.toml").write_text(
        f'listen = "127.0.0.1:{ports["relay"]}"\nrouter = "http://127.0.0.1:{ports["router"]}"\n')
    for name, argv in (("issuer", ["attest", "issuer", "serve", "--config", "issuer.toml"]),
                       ("router", ["attest", "router", "--config", "router.toml"]),
                       ("relay", ["attest", "relay", "--config", "relay.toml"])):
        wait_for_port(ports[name], procs.start(name, argv), name)
    # one node in this directory: a demo-only min_nodes = 1 (docs/threats.md: a client wants
    # several verified nodes to choose from, so that no one node can be targeted)
    policy = (work / "client-policy.toml").read_text() + "\n[private]\nmin_nodes = 1\n"
    (work / "private-policy.toml").write_text(policy)
    (work / "prompt.json").write_text('{"prompt": "hello from a private client"}\n')
    out = run(["verifier", "request", "https://inference.attestlog.test/v1/chat",
               "--relay", f"http://127.0.0.1:{ports['relay']}", "--policy",
               "private-policy.toml", "--simulated-trust", trust, "--state", "client-state",
               "--log-url", log_url, "--data", "prompt.json", "-H",
               "content-type: application/json", "--account-token-file", "account.token"],
              work, check=False)
    shown = (out.stdout.strip() or out.stderr.strip()).splitlines()
    say("\n".join("   " + line for line in shown[:6]))
    if out.returncode != 0 or "hello from a private client" not in out.stdout:
        raise RuntimeError("the private request to node A failed")
    for name in ("relay", "router"):
        if "hello from a private client" in procs.log_of(name):
            raise RuntimeError(f"the {name} logged plaintext")
    say("   the relay and the router saw only the encapsulated request and the token")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# --------------------------------------------------------------------------- the story

def main(serve: bool = False) -> int:
    """The story; with ``serve`` the log and witnesses stay up at the end until Ctrl-C."""
    from attest.simulate.node_fixture import policy_toml

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="attestlog-demo-"))
    procs = Processes(work)
    try:
        step(1, "a release log with two witnesses (SQLite, 127.0.0.1 only)")
        vkey = run(["tlog", "keygen", ORIGIN, "--out", "log.key"], work).stdout.strip()
        run(["tlog", "init", "--db", "log.db", "--origin", ORIGIN, "--key", "log.key"], work)
        witnesses = []
        for i in range(2):
            wname = f"witness{i}.attestlog.test"
            wvkey = run(["tlog", "witness", "keygen", wname, "--out", f"w{i}.key"],
                        work).stdout.strip()
            port = free_port()
            proc = procs.start(f"witness{i}", ["tlog", "witness", "serve", "--db", f"w{i}.db",
                                               "--key", f"w{i}.key", "--log", vkey,
                                               "--listen", f"127.0.0.1:{port}"])
            witnesses.append((wname, wvkey, port, proc))
        (work / "witnesses.policy").write_text(
            "".join(f"witness w{i} {v} http://127.0.0.1:{p}\n"
                    for i, (_, v, p, _) in enumerate(witnesses))
            + "group both 2 w0 w1\nquorum both\n")
        token = hashlib.sha256(os.urandom(16)).hexdigest()
        (work / "ci.token").write_text(token)
        (work / "submitters.toml").write_text(
            f'[tokens]\nci = "{hashlib.sha256(token.encode()).hexdigest()}"\n')
        # The release key exists before the log starts so that the log's explorer page (at
        # its URL's /) can check release and revocation signatures with it.
        rel = run(["attest", "release", "keygen", "--out", "release"], work).stdout.strip()
        log_port = free_port()
        log_url = f"http://127.0.0.1:{log_port}"
        log_proc = procs.start("log", ["tlog", "serve", "--db", "log.db", "--listen",
                                       f"127.0.0.1:{log_port}", "--submitters",
                                       "submitters.toml", "--witness-policy",
                                       "witnesses.policy", "--release-key",
                                       "release.pub", "--interval", "0.2",
                                       "--refresh", "30"])
        for i, (_, _, port, proc) in enumerate(witnesses):
            wait_for_port(port, proc, f"witness {i}")
        wait_for_port(log_port, log_proc, "tlog serve")
        say(f"   log {ORIGIN} at {log_url}; checkpoints need both witnesses' cosignatures")

        step(2, "CI publishes build A; build B is signed but never published")
        say(f"   release key id {rel}")
        builds = {}
        for build in ("a", "b"):
            d = Path(f"build-{build}")
            (work / d).mkdir()
            image = f"inference node image, build {build}\n".encode() * 64
            (work / d / "image.raw").write_bytes(image)
            # what the simulated node of this build will measure (attest agent --simulate
            # with [simulate] seed = "demo-build-X", gpus = 1): the publish arguments that
            # list it, its GPUs' driver and VBIOS versions included (publish requires them)
            measured = run(["attest", "simulate", "measurements", "--seed",
                            f"demo-build-{build}", "--gpus", "1"], work).stdout.split()
            builds[build] = d
            argv = ["attest", "publish", "--release-key", "release.key", "--name",
                    f"inference-node-{build}.img", "--image", str(d / "image.raw"),
                    "--repository", "https://github.com/example/inference-node",
                    "--commit", hashlib.sha1(build.encode()).hexdigest(),
                    "--builder", "https://ci.example/builders/reproducible",
                    "--artifact", f"disk={d / 'image.raw'}",
                    *measured]
            if build == "a":
                argv += ["--log", log_url, "--log-vkey", vkey, "--witness-policy",
                         "witnesses.policy", "--token-file", "ci.token"]
            else:
                argv += ["--no-submit"]
            out = run(argv, work)
            say("   " + (out.stdout.strip() or out.stderr.strip()).replace("\n", "\n   "))
        digest_a = hashlib.sha256(
            (work / builds["a"] / "inference-node-a.img.release.json").read_bytes()).hexdigest()

        step(3, "two simulated nodes boot: A (SEV-SNP + 1 GPU) and B (TDX + 1 GPU)")
        pub = (work / "release.pub").read_text().strip()
        # the nodes' inference backend: a small echo server behind each node's OHTTP gateway
        echo_port = free_port()
        echo = procs.start("echo", [sys.executable, "-m", "attest.simulate.echo_backend",
                                    "--listen", f"127.0.0.1:{echo_port}"])
        urls, base, trust = {}, {}, {}
        for build, cpu in (("a", "sev-snp"), ("b", "tdx")):
            port = free_port()
            base[build] = f"https://127.0.0.1:{port}"
            urls[build] = f"{base[build]}/.well-known/attestlog/bundle"
            # --simulate writes the simulated roots here; only a policy with
            # unsafe_allow_simulated_hardware = true lets the client use them.
            trust[build] = f"node-{build}/simulated-trust.json"
            (work / f"node-{build}.toml").write_text(
                f'listen = "127.0.0.1:{port}"\nstate_dir = "node-{build}"\n'
                f'hostnames = ["127.0.0.1"]\n'
                f'[log]\nurl = "{log_url}"\nvkey = "{vkey}"\n'
                f'witness_policy = """\n{(work / "witnesses.policy").read_text()}"""\n'
                f'[release]\nkeys = ["{pub}"]\n'
                # on_revocation = "warn": keep serving after a revocation, as a compromised
                # node would, so the client's refusal can be shown.
                f'[agent]\nproof_refresh = 1\non_revocation = "warn"\n'
                f'[gateway]\nupstream = "http://127.0.0.1:{echo_port}"\n'
                f'[simulate]\ncpu = "{cpu}"\ngpus = 1\nseed = "demo-build-{build}"\n')
        wait_for_port(echo_port, echo, "echo backend")
        node_a = procs.start("node-a", ["attest", "agent", "--config", "node-a.toml",
                                        "--simulate"])
        wait_for_port(int(urls["a"].split(":")[2].split("/")[0]), node_a, "node A")
        say("   node A: " + procs.log_of("node-a").strip().splitlines()[-1])
        refused = run(["attest", "agent", "--config", "node-b.toml", "--simulate"], work,
                      check=False)
        last = refused.stderr.strip().splitlines()[-1]
        say(f"   node B exited with status {refused.returncode}:\n   {last}")
        if refused.returncode == 0 or "agent.release.not_logged" not in last:
            raise RuntimeError("node B should have refused to start")
        say("   ... so we force node B up with the dev-only flag, as a malicious operator "
            "could:")
        node_b = procs.start("node-b", [
            "attest", "agent", "--config", "node-b.toml", "--simulate",
            "--unsafe-serve-unlogged", "--release-entry",
            str(builds["b"] / "inference-node-b.img.release.json")])
        wait_for_port(int(urls["b"].split(":")[2].split("/")[0]), node_b, "node B")

        step(4, "a client verifies both nodes (verifier node)")
        policy = work / "client-policy.toml"
        policy.write_text(policy_toml(log_vkey=vkey, witness_vkeys=[w[1] for w in witnesses],
                                      quorum=2, release_key_text=pub, gpus=1,
                                      gpu_driver=GPU_DRIVER, gpu_vbios=GPU_VBIOS))
        ok_a, _ = verify_node("node A", base["a"], work, trust=trust["a"], log_url=log_url,
                              show_checks=True)
        ok_b, why_b = verify_node("node B", base["b"], work, trust=trust["b"], log_url=log_url)
        if not ok_a or ok_b or "log.inclusion" not in why_b:
            raise RuntimeError("unexpected verdicts")

        step(5, "a private request to node A: OHTTP through a relay, with an anonymous token")
        private_request(procs, work, base["a"], trust["a"], log_url)

        step(6, "build A is revoked; the client refuses node A too")
        out = run(["attest", "revoke", f"sha256:{digest_a}", "--reason",
                   "demo: CVE in the inference server", "--log", log_url, "--log-vkey", vkey,
                   "--witness-policy", "witnesses.policy", "--release-key", "release.key",
                   "--token-file", "ci.token", "--out", "revocations"], work)
        say("   " + out.stdout.strip())
        say("   node A keeps serving (its config says on_revocation = \"warn\", as a compromised "
            "node would); the client still refuses it:")
        ok_a, why_a = verify_node("node A", base["a"], work, trust=trust["a"], log_url=log_url)
        if ok_a or "release.revoked" not in why_a:
            raise RuntimeError("node A should now be refused")
        say(f"\ndone in {time.monotonic() - started:.1f}s: accepted the logged build, sent it "
            "a private request, refused the unlogged one (log.inclusion) and the revoked one "
            "(release.revoked)")
        say(f"explorer: {log_url}/ (the log verified in your browser; docs/explorer.md)")
        if serve:
            say("serving the log and its witnesses until Ctrl-C ...")
            signal.signal(signal.SIGTERM, _interrupt)  # a plain kill also stops them all
            try:
                while all(p.poll() is None for _, p in procs.procs[:3]):
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
        else:
            say("   (`python examples/demo.py --serve` keeps the log up to browse it)")
        return 0
    except Exception:
        for name, _ in procs.procs:
            sys.stderr.write(f"--- {name} log ---\n{procs.log_of(name)[-3000:]}\n")
        raise
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
        alive = [name for name, p in procs.procs if p.poll() is None]
        say(f"stopped all {len(procs.procs)} background processes" if not alive
            else f"STILL RUNNING: {', '.join(alive)}")


if __name__ == "__main__":
    sys.exit(main(serve="--serve" in sys.argv[1:]))
