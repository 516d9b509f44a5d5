// attestlog log explorer: verifies a C2SP tlog-tiles log in the browser, then shows it.
//
// Trust comes from explorer.json (the log's verifier key and the witness policy) and from
// nothing else: every byte shown is first checked against the checkpoint, the checkpoint
// against the log key and the witnesses' cosignatures. Any failure refuses the whole page
// (data-state="refused", naming the check) and shows nothing as verified.
//
// Specs: C2SP signed-note, tlog-checkpoint, tlog-cosignature, tlog-policy, tlog-tiles
// (https://c2sp.org/...), RFC 9162 (Merkle trees and proofs), DSSE v1 and in-toto
// Statement v1 for attestlog entries (docs/formats.md). Plain JavaScript, no dependencies.
'use strict';

const TILE_WIDTH = 256;
const HASH_SIZE = 32;
const RELEASE_TYPE = 'https://attestlog.dev/release/v1';
const REVOCATION_TYPE = 'https://attestlog.dev/revocation/v2';
const DSSE_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const HISTORY_KEY = 'attestlog-explorer/checkpoints/v1';
const enc = new TextEncoder();

// A refusal: the page shows `check: message` and nothing as verified.
class Refusal extends Error {
  constructor(check, message) {
    super(message);
    this.check = check;
  }
}

// ---------------------------------------------------------------- bytes

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// Strict standard base64 with padding: re-encoding must give the same text.
function b64decode(text, check, what) {
  let bin;
  try {
    bin = atob(text);
  } catch (e) {
    throw new Refusal(check, `${what}: not base64`);
  }
  const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  if (btoa(bin) !== text) throw new Refusal(check, `${what}: non-canonical base64`);
  return out;
}

function b64encode(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

// ---------------------------------------------------------------- fetching

// Same-origin, relative fetches only (the page's CSP allows nothing else).
async function fetchBytes(path, noCache) {
  let resp;
  try {
    resp = await fetch(path, noCache ? { cache: 'no-store' } : {});
  } catch (e) {
    throw new Refusal('log.fetch', `${path}: unreachable (${e.message})`);
  }
  if (!resp.ok) throw new Refusal('log.fetch', `${path}: HTTP ${resp.status}`);
  return new Uint8Array(await resp.arrayBuffer());
}

// ---------------------------------------------------------------- signed notes

// c2sp.org/signed-note "Verifier keys": name+hash+base64(type || public key), where
// hash = first 4 bytes of SHA-256(name || 0x0A || type || public key), as 8 hex digits.
// The name and the hash end at the first two "+" (base64 may contain "+" too).
async function parseVkey(vkey, check) {
  const parts = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(String(vkey));
  if (!parts) throw new Refusal(check, `malformed verifier key ${JSON.stringify(vkey)}`);
  parts.shift();
  const material = b64decode(parts[2], check, 'verifier key');
  if (material.length !== 33) throw new Refusal(check, 'verifier key: want type + 32 bytes');
  const key = { name: parts[0], type: material[0], pub: material.slice(1) };
  const id = await keyId(key.name, key.type, key.pub);
  if (hex(id) !== parts[1]) throw new Refusal(check, `verifier key ${key.name}: wrong key hash`);
  return key;
}

async function keyId(name, type, pub) {
  return (await sha256(concat(enc.encode(name + '\n'), Uint8Array.of(type), pub))).slice(0, 4);
}

async function ed25519Verify(pub, sig, message) {
  try {
    const key = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
    return await crypto.subtle.verify({ name: 'Ed25519' }, key, sig, message);
  } catch (e) {
    return false;
  }
}

// c2sp.org/signed-note "Format": the text (every line ending in a newline), a blank line,
// then signature lines "— <name> <base64(key hash[4] || signature)>".
function parseNote(bytes) {
  const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  const split = text.indexOf('\n\n');
  if (split < 0 || !text.endsWith('\n')) throw new Refusal('note.format', 'not a signed note');
  const body = text.slice(0, split + 1);
  const signatures = [];
  for (const line of text.slice(split + 2, -1).split('\n')) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new Refusal('note.format', `malformed signature line ${JSON.stringify(line)}`);
    const raw = b64decode(m[2], 'note.format', 'signature');
    if (raw.length < 5) throw new Refusal('note.format', 'signature too short');
    signatures.push({ name: m[1], id: raw.slice(0, 4), sig: raw.slice(4) });
  }
  if (signatures.length === 0) throw new Refusal('note.format', 'note has no signature');
  return { body, bodyBytes: enc.encode(body), signatures };
}

// c2sp.org/tlog-checkpoint "Note text": origin, decimal tree size, base64 root hash, then
// optional extension lines.
function parseCheckpoint(body) {
  const lines = body.slice(0, -1).split('\n');
  if (lines.length < 3 || !/^(0|[1-9][0-9]{0,15})$/.test(lines[1])) {
    throw new Refusal('checkpoint.format', 'not a checkpoint (origin, size, root)');
  }
  const root = b64decode(lines[2], 'checkpoint.format', 'root hash');
  if (root.length !== HASH_SIZE) throw new Refusal('checkpoint.format', 'root is not 32 bytes');
  return { origin: lines[0], size: Number(lines[1]), root };
}

// The log's own signature (signed-note "Signatures"): a line with the key's name and hash
// whose Ed25519 signature over the text verifies. A matching line that fails is forgery.
async function verifyLogSignature(note, logKey) {
  const id = await keyId(logKey.name, logKey.type, logKey.pub);
  let ok = false;
  for (const s of note.signatures) {
    if (s.name !== logKey.name || !equal(s.id, id)) continue;
    if (!(await ed25519Verify(logKey.pub, s.sig, note.bodyBytes))) {
      throw new Refusal('log.signature', `signature by ${logKey.name} does not verify`);
    }
    ok = true;
  }
  if (!ok) throw new Refusal('log.signature', `no signature by the log key ${logKey.name}`);
}

// ---------------------------------------------------------------- witnesses

// c2sp.org/tlog-policy: "witness NAME VKEY [URL]", "group NAME all|any|K MEMBER...",
// "quorum NAME|none"; "log" lines are ignored here (the page's log key is in the config).
async function parseWitnessPolicy(text) {
  const policy = { witnesses: [], groups: new Map(), quorum: null };
  const known = new Set(['none']);
  for (const raw of text.split('\n')) {
    const items = raw.trim().split(/[ \t]+/);
    if (!items[0] || items[0].startsWith('#') || items[0] === 'log') continue;
    if (items[0] === 'witness' && (items.length === 3 || items.length === 4)) {
      policy.witnesses.push({ name: items[1], key: await parseVkey(items[2], 'log.policy') });
      known.add(items[1]);
    } else if (items[0] === 'group' && items.length >= 4) {
      const members = items.slice(3);
      const k = items[2] === 'all' ? members.length : items[2] === 'any' ? 1 : Number(items[2]);
      if (!Number.isInteger(k) || k < 1 || k > members.length || !members.every((m) => known.has(m) && m !== 'none')) {
        throw new Refusal('log.policy', `bad group line ${JSON.stringify(raw)}`);
      }
      policy.groups.set(items[1], { k, members });
      known.add(items[1]);
    } else if (items[0] === 'quorum' && items.length === 2 && known.has(items[1]) && policy.quorum === null) {
      policy.quorum = items[1];
    } else {
      throw new Refusal('log.policy', `bad policy line ${JSON.stringify(raw)}`);
    }
  }
  if (policy.quorum === null) throw new Refusal('log.policy', 'no quorum line');
  return policy;
}

// c2sp.org/tlog-cosignature "Format" and "Ed25519 signed message": key ID uses type 0x04;
// the signature is timestamp[8, big-endian] || Ed25519 signature over
// "cosignature/v1\ntime <timestamp>\n" || checkpoint text.
async function verifyCosignature(witness, note) {
  const id = await keyId(witness.key.name, 0x04, witness.key.pub);
  const lines = note.signatures.filter((s) => s.name === witness.key.name && equal(s.id, id));
  for (const s of lines) {
    if (s.sig.length !== 72) throw new Refusal('log.witness.signature', `${witness.name}: bad cosignature length`);
    const ts = new DataView(s.sig.buffer, s.sig.byteOffset, 8).getBigUint64(0);
    const message = concat(enc.encode(`cosignature/v1\ntime ${ts}\n`), note.bodyBytes);
    if (!(await ed25519Verify(witness.key.pub, s.sig.slice(8), message))) {
      throw new Refusal('log.witness.signature', `cosignature of witness ${witness.name} does not verify`);
    }
  }
  return lines.length > 0;
}

// tlog-policy "Defining the quorum": a witness counts if it cosigned; a group if at least
// K of its members count.
function quorumMet(policy, cosigned, name) {
  if (name === 'none') return true;
  const group = policy.groups.get(name);
  if (!group) return cosigned.has(name);
  return group.members.filter((m) => quorumMet(policy, cosigned, m)).length >= group.k;
}

async function verifyWitnesses(policy, note) {
  const cosigned = new Set();
  for (const w of policy.witnesses) {
    if (await verifyCosignature(w, note)) cosigned.add(w.name);
  }
  if (!quorumMet(policy, cosigned, policy.quorum)) {
    throw new Refusal('log.witness.quorum', `witness quorum "${policy.quorum}" not met: cosigned by ` +
      `${cosigned.size} of ${policy.witnesses.length} (${[...cosigned].join(', ') || 'none'})`);
  }
  return cosigned;
}

// ---------------------------------------------------------------- tiles and the tree

// c2sp.org/tlog-tiles "Tile paths": the index in 3-digit groups, all but the last with an
// "x" prefix; a partial tile of width W < 256 ends in ".p/W".
function tilePath(level, index, width) {
  let digits = String(index).padStart(3, '0');
  digits = digits.padStart(Math.ceil(digits.length / 3) * 3, '0');
  const groups = digits.match(/.../g);
  const n = groups.map((g, i) => (i < groups.length - 1 ? 'x' + g : g)).join('/');
  return `tile/${level}/${n}${width < TILE_WIDTH ? '.p/' + width : ''}`;
}

// The tiles of one level for a tree of `count` hashes (or entries) at that level.
function tilesOf(count) {
  const out = [];
  for (let i = 0; i * TILE_WIDTH < count; i++) out.push([i, Math.min(TILE_WIDTH, count - i * TILE_WIDTH)]);
  return out;
}

// tlog-tiles "Entry bundles": each entry as a big-endian uint16 length and its bytes.
function parseBundle(bytes, width, path) {
  const entries = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) throw new Refusal('tiles.entry_bundle', `${path}: truncated`);
    const n = (bytes[at] << 8) | bytes[at + 1];
    if (at + 2 + n > bytes.length) throw new Refusal('tiles.entry_bundle', `${path}: truncated`);
    entries.push(bytes.slice(at + 2, at + 2 + n));
    at += 2 + n;
  }
  if (entries.length !== width) {
    throw new Refusal('tiles.entry_bundle', `${path}: ${entries.length} entries, want ${width}`);
  }
  return entries;
}

// RFC 9162 §2.1.1: leaf hash = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right).
const leafHash = (entry) => sha256(concat(Uint8Array.of(0), entry));
const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

// RFC 9162 §2.1.1 MTH(D[lo:hi]) over leaf hashes, splitting at the largest power of two < n.
// Subtree hashes are remembered per leaf array, so the roots of earlier sizes (history) and
// inclusion paths cost only the few subtrees they do not share.
const subtreeCache = new WeakMap();
async function mth(hashes, lo, hi) {
  if (hi - lo === 1) return hashes[lo];
  if (!subtreeCache.has(hashes)) subtreeCache.set(hashes, new Map());
  const cache = subtreeCache.get(hashes);
  const key = `${lo}:${hi}`;
  if (!cache.has(key)) {
    let k = 1;
    while (k * 2 < hi - lo) k *= 2;
    cache.set(key, await nodeHash(await mth(hashes, lo, lo + k), await mth(hashes, lo + k, hi)));
  }
  return cache.get(key);
}

function splitHashTile(bytes, width, path) {
  if (bytes.length !== width * HASH_SIZE) {
    throw new Refusal('tiles.hash_tile', `${path}: ${bytes.length} bytes, want ${width * HASH_SIZE}`);
  }
  return Array.from({ length: width }, (_, i) => bytes.slice(i * HASH_SIZE, (i + 1) * HASH_SIZE));
}

// Every entry bundle, then every hash tile of every level (tlog-tiles "Merkle tree"): level
// 0 must equal the entries' leaf hashes, level L+1 the roots of 256-hash runs of level L,
// and the RFC 9162 root of all leaves must be the checkpoint's root.
async function verifyTree(cp, progress) {
  const entries = [];
  for (const [i, w] of tilesOf(cp.size)) {
    const path = tilePath('entries', i, w);
    entries.push(...parseBundle(await fetchBytes(path), w, path));
    progress(`entries ${entries.length} of ${cp.size}`);
  }
  const leaves = [];
  for (const e of entries) leaves.push(await leafHash(e));
  let below = leaves;
  for (let level = 0; below.length > 0; level++) {
    const tiled = [];
    for (const [i, w] of tilesOf(below.length)) {
      const path = tilePath(level, i, w);
      tiled.push(...splitHashTile(await fetchBytes(path), w, path));
    }
    for (let j = 0; j < tiled.length; j++) {
      if (!equal(tiled[j], below[j])) {
        throw new Refusal('log.tiles', `hash ${j} of level ${level} differs from what the ${level ? 'level below' : 'entries'} give`);
      }
    }
    const next = [];
    for (let j = 0; (j + 1) * TILE_WIDTH <= below.length; j++) {
      next.push(await mth(below, j * TILE_WIDTH, (j + 1) * TILE_WIDTH));
    }
    below = next;
    progress(`hash tiles of level ${level} checked`);
  }
  const root = cp.size === 0 ? await sha256(new Uint8Array(0)) : await mth(leaves, 0, leaves.length);
  if (!equal(root, cp.root)) throw new Refusal('log.root', 'the root recomputed from the tiles is not the checkpoint root');
  return { entries, leaves };
}

// RFC 9162 §2.1.3.1 PATH(m, D[n]): the inclusion proof of leaf m, from the level-0 tile hashes.
async function inclusionPath(leaves, m, lo, hi) {
  if (hi - lo === 1) return [];
  let k = 1;
  while (k * 2 < hi - lo) k *= 2;
  if (m < lo + k) return [...(await inclusionPath(leaves, m, lo, lo + k)), await mth(leaves, lo + k, hi)];
  return [...(await inclusionPath(leaves, m, lo + k, hi)), await mth(leaves, lo, lo + k)];
}

// RFC 9162 §2.1.3.2: verify an inclusion proof of `leaf` at `index` in a tree of `size`.
async function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

// ---------------------------------------------------------------- the checkpoint

async function verifyCheckpoint(config, noteBytes) {
  const logKey = await parseVkey(config.log_vkey, 'log.config');
  if (logKey.type !== 0x01) throw new Refusal('log.config', 'the log key must be Ed25519 (type 0x01)');
  const note = parseNote(noteBytes);
  const cp = parseCheckpoint(note.body);
  if (cp.origin !== (config.origin || logKey.name)) {
    throw new Refusal('log.origin', `checkpoint origin ${JSON.stringify(cp.origin)}, want ${JSON.stringify(config.origin)}`);
  }
  await verifyLogSignature(note, logKey);
  const policy = await parseWitnessPolicy(config.witness_policy || 'quorum none\n');
  const cosigned = await verifyWitnesses(policy, note);
  return { cp, cosigned, policy, noteText: new TextDecoder().decode(noteBytes) };
}

// ---------------------------------------------------------------- attestlog entries

// An attestlog entry (docs/formats.md "Release entries"): a DSSE envelope whose payload is
// an in-toto Statement v1 with a release or revocation predicate. Anything else is shown raw.
async function describeEntry(entry, index, leaf) {
  const base = { index, size: entry.length, leaf, digest: hex(await sha256(entry)), kind: 'other' };
  let envelope, statement, payload;
  try {
    envelope = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(entry));
    if (envelope.payloadType !== DSSE_PAYLOAD_TYPE || !Array.isArray(envelope.signatures)) return base;
    payload = b64decode(envelope.payload, 'release.dsse', 'payload');
    statement = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch (e) {
    return base;
  }
  const kind = { [RELEASE_TYPE]: 'release', [REVOCATION_TYPE]: 'revocation' }[statement.predicateType];
  if (!kind) return base;
  return {
    ...base, kind, statement, payload,
    payloadDigest: hex(await sha256(payload)),
    keyids: envelope.signatures.map((s) => String(s.keyid)),
    envelope,
  };
}

// Every measurement a release lists, as [label, lowercase hex] (what `verifier` reports).
function releaseMeasurements(statement) {
  const m = (statement.predicate && statement.predicate.measurements) || {};
  const out = [];
  for (const s of m.snp || []) out.push([`SNP MEASUREMENT (${s.vcpus} × ${s.vcpu_type}, ${s.vmm_type})`, s.measurement]);
  if (m.tdx) for (const k of ['mrtd', 'rtmr0', 'rtmr1', 'rtmr2']) if (m.tdx[k]) out.push([`TDX ${k.toUpperCase()}`, m.tdx[k]]);
  return out.map(([l, v]) => [l, String(v).toLowerCase()]);
}

// What a revocation names (docs/formats.md, "Revocation predicate", revocation/v2): one
// subject, either `attestlog-release-statement` with the SHA-256 of a release's DSSE payload
// (revoking every entry that carries that statement, whatever signatures surround it) or
// `attestlog-measurement` with a 48-byte measurement as sha384 (revoking every release that
// lists it, logged before or after the revocation). Anything else revokes nothing.
function revocationTargets(statement) {
  const statements = [];
  const measurements = [];
  for (const s of statement.subject || []) {
    const digest = s.digest || {};
    if (s.name === 'attestlog-release-statement' && typeof digest.sha256 === 'string') statements.push(normalizeHex(digest.sha256));
    if (s.name === 'attestlog-measurement' && typeof digest.sha384 === 'string') measurements.push(normalizeHex(digest.sha384));
  }
  return { statements, measurements, reason: String((statement.predicate || {}).reason || '') };
}

function revokers(release, revocations) {
  const listed = new Set(releaseMeasurements(release.statement).map(([, v]) => v));
  return revocations.filter((r) =>
    r.targets.statements.includes(release.payloadDigest) ||
    r.targets.measurements.some((m) => listed.has(m)));
}

// Measurements as a node or `verifier` reports them: hex, any case, optional 0x prefix.
function normalizeHex(text) {
  return String(text).trim().toLowerCase().replace(/^0x/, '');
}

// DSSE v1 PAE: "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload.
function pae(type, payload) {
  return concat(enc.encode(`DSSEv1 ${enc.encode(type).length} ${type} ${payload.length} `), payload);
}

// Release keys from the config ("attestlog-release-key:v1 <base64 SPKI DER>"): keyid is the
// hex SHA-256 of the SPKI DER (docs/formats.md "DSSE envelope"). Ed25519 and ECDSA P-256.
async function loadReleaseKeys(lines) {
  const keys = new Map();
  for (const line of lines || []) {
    const m = /^attestlog-release-key:v1 (\S+)\s*$/.exec(line);
    if (!m) throw new Refusal('log.config', 'bad release key line');
    const spki = b64decode(m[1], 'log.config', 'release key');
    let key = null;
    let alg = null;
    for (const a of [{ name: 'Ed25519' }, { name: 'ECDSA', namedCurve: 'P-256' }]) {
      try {
        key = await crypto.subtle.importKey('spki', spki, a, false, ['verify']);
        alg = a.name;
        break;
      } catch (e) { /* try the next algorithm */ }
    }
    if (!key) throw new Refusal('log.config', 'release key is neither Ed25519 nor P-256');
    keys.set(hex(await sha256(spki)), { key, alg });
  }
  return keys;
}

// ECDSA signatures in DSSE are DER Ecdsa-Sig-Value; WebCrypto wants r || s (32 bytes each).
function derToRaw(der) {
  const ints = [];
  let at = 2;
  if (der[0] !== 0x30 || der[1] !== der.length - 2) return null;
  for (let i = 0; i < 2; i++) {
    if (der[at] !== 0x02) return null;
    const n = der[at + 1];
    let v = der.slice(at + 2, at + 2 + n);
    while (v.length > 32 && v[0] === 0) v = v.slice(1);
    if (v.length > 32) return null;
    ints.push(concat(new Uint8Array(32 - v.length), v));
    at += 2 + n;
  }
  return at === der.length ? concat(...ints) : null;
}

// "signed by <keyid>" judged against the configured release keys: verified, failed, or
// not checked (no such key in the config).
async function judgeSigners(item, keys) {
  const out = [];
  for (const s of item.envelope.signatures) {
    const k = keys.get(String(s.keyid));
    if (!k) {
      out.push({ keyid: s.keyid, state: 'unknown key' });
      continue;
    }
    let sig;
    try {
      sig = b64decode(s.sig, 'release.dsse', 'signature');
    } catch (e) {
      out.push({ keyid: s.keyid, state: 'INVALID signature' });
      continue;
    }
    const message = pae(item.envelope.payloadType, item.payload);
    const params = k.alg === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' };
    const raw = k.alg === 'ECDSA' ? derToRaw(sig) : sig;
    const ok = raw !== null && await crypto.subtle.verify(params, k.key, raw, message).catch(() => false);
    out.push({ keyid: s.keyid, state: ok ? 'verified' : 'INVALID signature' });
  }
  return out;
}

// ---------------------------------------------------------------- checkpoint history

// Checkpoints this browser verified before (localStorage). Each must be consistent with
// the current tree: its size not larger (else rollback) and its root the root of the
// current leaves at that size (else a fork) — RFC 9162 §2.1.4's property, checked by
// recomputation since the page holds every leaf.
async function checkHistory(origin, cp, leaves) {
  let all = {};
  try {
    all = JSON.parse(localStorage.getItem(HISTORY_KEY) || '{}');
  } catch (e) {
    all = {};
  }
  const seen = Array.isArray(all[origin]) ? all[origin] : [];
  for (const old of seen) {
    if (old.size > cp.size) {
      throw new Refusal('log.consistency', `this browser verified size ${old.size} before; the log now shows ${cp.size} (rollback)`);
    }
    const root = old.size === 0 ? await sha256(new Uint8Array(0)) : await mth(leaves, 0, old.size);
    if (b64encode(root) !== old.root) {
      throw new Refusal('log.consistency', `the checkpoint of size ${old.size} seen on ${old.seen} is not a prefix of this log (fork)`);
    }
  }
  const rootText = b64encode(cp.root);
  if (!seen.some((o) => o.size === cp.size && o.root === rootText)) {
    seen.push({ size: cp.size, root: rootText, seen: new Date().toISOString() });
  }
  seen.sort((a, b) => a.size - b.size);
  all[origin] = seen.slice(-50);
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(all));
  } catch (e) { /* storage full or disabled: the history is a convenience */ }
  return seen;
}

// ---------------------------------------------------------------- rendering

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children.flat()) node.append(c instanceof Node ? c : String(c));
  return node;
}

function setStatus(state, text) {
  const status = document.getElementById('status');
  status.dataset.state = state;
  status.textContent = text;
}

function table(caption, head, rows) {
  return el('table', {}, el('caption', {}, caption),
    el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))));
}

function code(text) {
  return el('code', {}, text);
}

function releaseRow(r, byIndex) {
  const p = r.statement.predicate || {};
  const name = (r.statement.subject || []).map((s) => s.name).join(', ');
  const source = p.source ? `${p.source.repository} @ ${String(p.source.commit).slice(0, 12)}` : '';
  const gpu = (p.measurements && p.measurements.gpu) || {};
  const sigstore = p.sigstore || (r.envelope && r.envelope.sigstore);
  const revoked = r.revokedBy.length
    ? el('strong', { class: 'revoked' }, 'REVOKED by ' + r.revokedBy.map((v) => `entry ${v.index}`).join(', '))
    : 'not revoked';
  return [
    String(r.index),
    el('span', {}, name, el('br'), el('small', {}, source)),
    el('ul', {}, r.signers.map((s) => el('li', {}, code(s.keyid.slice(0, 16)), ` (${s.state})`))),
    el('ul', { class: 'measurements' }, releaseMeasurements(r.statement).map(([l, v]) => el('li', {}, `${l}: `, code(v)))),
    `driver ${(gpu.drivers || []).join(', ') || '—'}; VBIOS ${(gpu.vbios || []).join(', ') || '—'}`,
    sigstore ? JSON.stringify(sigstore.identity || sigstore) : '—',
    revoked,
  ];
}

function revocationRow(v, releases) {
  const hits = releases.filter((r) => r.revokedBy.includes(v)).map((r) => `entry ${r.index}`);
  const named = [...v.targets.statements.map((d) => `statement ${d.slice(0, 16)}…`), ...v.targets.measurements.map((m) => `measurement ${m.slice(0, 16)}…`)];
  return [String(v.index), named.join('; '), hits.join(', ') || 'no logged release', v.targets.reason,
    v.signers.map((s) => `${s.keyid.slice(0, 16)} (${s.state})`).join(', ')];
}

// The growth plot: entries by index; releases as circles, revocations as crosses, other
// entries as small squares, so it reads without colour. Inline SVG with <title>/<desc>.
function growthPlot(items) {
  const w = 600, h = 160, pad = 30;
  const n = Math.max(items.length, 1);
  const x = (i) => pad + ((w - 2 * pad) * i) / Math.max(n - 1, 1);
  const y = (c) => h - pad - ((h - 2 * pad) * c) / n;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    svg.append(node);
    return node;
  };
  const counts = { release: 0, revocation: 0, other: 0 };
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-labelledby', 'plot-title plot-desc');
  add('title', { id: 'plot-title' }, 'Log growth');
  items.forEach((it) => counts[it.kind]++);
  add('desc', { id: 'plot-desc' }, `${items.length} entries: ${counts.release} releases (circles), ` +
    `${counts.revocation} revocations (crosses), ${counts.other} other entries (squares).`);
  add('line', { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, class: 'axis' });
  add('line', { x1: pad, y1: pad, x2: pad, y2: h - pad, class: 'axis' });
  add('text', { x: pad, y: h - 8, class: 'label' }, 'entry index →');
  add('text', { x: 4, y: pad - 8, class: 'label' }, 'log size');
  add('polyline', { points: items.map((it, i) => `${x(i)},${y(i + 1)}`).join(' '), class: 'growth' });
  items.forEach((it, i) => {
    const cx = x(i), cy = y(i + 1);
    if (it.kind === 'release') add('circle', { cx, cy, r: 5, class: 'mark-release' });
    else if (it.kind === 'revocation') add('path', { d: `M${cx - 5},${cy - 5}L${cx + 5},${cy + 5}M${cx - 5},${cy + 5}L${cx + 5},${cy - 5}`, class: 'mark-revocation' });
    else add('rect', { x: cx - 2, y: cy - 2, width: 4, height: 4, class: 'mark-other' });
  });
  return svg;
}

function show(id, ...children) {
  const section = document.getElementById(id);
  section.querySelector('.content').replaceChildren(...children);
  section.hidden = false;
}

function render(state) {
  const { releases, revocations, others, items, history, cp } = state;
  show('releases', releases.length ? table(`${releases.length} releases`,
    ['Index', 'Release', 'Publisher key', 'Measurements', 'GPU', 'Sigstore identity', 'Status'],
    releases.map((r) => releaseRow(r))) : el('p', {}, 'No releases.'));
  show('revocations', revocations.length ? table(`${revocations.length} revocations`,
    ['Index', 'Names', 'Revokes', 'Reason', 'Signed by'], revocations.map((v) => revocationRow(v, releases)))
    : el('p', {}, 'No revocations.'));
  show('others', others.length ? table(`${others.length} other entries`, ['Index', 'Size', 'Leaf hash'],
    others.map((o) => [String(o.index), `${o.size} bytes`, code(hex(o.leaf))])) : el('p', {}, 'None.'));
  show('history', table('Checkpoints verified by this browser', ['Size', 'Root', 'First seen'],
    history.map((h) => [String(h.size), code(h.root), h.seen])), el('pre', {}, state.noteText));
  show('growth', growthPlot(items));
  document.getElementById('search').hidden = false;
  document.getElementById('origin').textContent = cp.origin;
}

// ---------------------------------------------------------------- search

// Which release lists this measurement, at which index, with an inclusion proof built from
// the verified level-0 tile hashes and checked (RFC 9162 §2.1.3.2) against the checkpoint.
async function search(state, query) {
  const out = document.getElementById('search-result');
  const want = normalizeHex(query);
  if (!/^[0-9a-f]{96}$/.test(want)) {
    out.dataset.state = 'invalid';
    out.replaceChildren(el('p', {}, 'A measurement is 48 bytes: 96 hex digits (an optional 0x, any case).'));
    return;
  }
  const hits = state.releases.filter((r) => releaseMeasurements(r.statement).some(([, v]) => v === want));
  if (!hits.length) {
    out.dataset.state = 'not-found';
    out.replaceChildren(el('p', {}, `No release in this log lists ${want}.`));
    return;
  }
  const parts = [];
  let allOk = true;
  for (const r of hits) {
    const proof = await inclusionPath(state.leaves, r.index, 0, state.leaves.length);
    const ok = await verifyInclusion(r.index, state.cp.size, state.leaves[r.index], proof, state.cp.root);
    allOk = allOk && ok;
    const labels = releaseMeasurements(r.statement).filter(([, v]) => v === want).map(([l]) => l);
    parts.push(el('article', { class: 'hit', 'data-index': String(r.index) },
      el('h3', {}, `Entry ${r.index}: ${(r.statement.subject || []).map((s) => s.name).join(', ')}`),
      el('p', {}, `Listed as ${labels.join(', ')}.`),
      el('p', { class: ok ? 'ok' : 'bad' }, ok
        ? `Inclusion proof verified: ${proof.length} hashes from leaf ${r.index} to the root of checkpoint ${state.cp.size}.`
        : 'INCLUSION PROOF FAILED (log.inclusion)'),
      el('ol', { class: 'proof' }, proof.map((p) => el('li', {}, code(hex(p))))),
      el('p', { class: r.revokedBy.length ? 'revoked' : '' }, r.revokedBy.length
        ? `REVOKED by entry ${r.revokedBy.map((v) => v.index).join(', ')}: ${r.revokedBy.map((v) => v.targets.reason).join('; ')}`
        : 'Not revoked.')));
  }
  out.dataset.state = allOk ? (hits.every((r) => r.revokedBy.length) ? 'revoked' : 'found') : 'refused';
  out.replaceChildren(...parts);
}

// ---------------------------------------------------------------- main

async function load() {
  setStatus('verifying', 'verifying: fetching the configuration');
  let config;
  try {
    config = JSON.parse(new TextDecoder().decode(await fetchBytes('explorer.json', true)));
  } catch (e) {
    if (e instanceof Refusal) throw e;
    throw new Refusal('log.config', 'explorer.json is not JSON');
  }
  document.getElementById('log-key').textContent = config.log_vkey;
  setStatus('verifying', 'verifying: checkpoint signatures');
  const verified = await verifyCheckpoint(config, await fetchBytes('checkpoint', true));
  const { cp, cosigned, policy } = verified;
  const tree = await verifyTree(cp, (msg) => setStatus('verifying', `verifying: ${msg}`));
  const history = await checkHistory(cp.origin, cp, tree.leaves);
  const keys = await loadReleaseKeys(config.release_keys);
  const items = [];
  for (let i = 0; i < tree.entries.length; i++) items.push(await describeEntry(tree.entries[i], i, tree.leaves[i]));
  const revocations = items.filter((it) => it.kind === 'revocation');
  const releases = items.filter((it) => it.kind === 'release');
  for (const it of [...releases, ...revocations]) {
    it.signers = await judgeSigners(it, keys);
    // With release keys configured, only a verified signature makes a revocation count.
    it.trusted = keys.size === 0 || it.signers.some((s) => s.state === 'verified');
  }
  for (const v of revocations) v.targets = revocationTargets(v.statement);
  const counted = revocations.filter((v) => v.trusted);
  for (const r of releases) r.revokedBy = revokers(r, counted);
  const state = { ...verified, ...tree, items, releases, revocations, others: items.filter((it) => it.kind === 'other'), history };
  render(state);
  setStatus('verified', `verified: checkpoint ${cp.size}, ${cosigned.size} of ${policy.witnesses.length} witnesses`);
  return state;
}

function refuse(err) {
  const check = err instanceof Refusal ? err.check : 'explorer.internal';
  setStatus('refused', `REFUSED (${check}): ${err.message}. Nothing on this page is verified.`);
  for (const id of ['releases', 'revocations', 'others', 'history', 'growth', 'search']) {
    document.getElementById(id).hidden = true;
  }
}

function queryFromHash() {
  const m = /(?:^#|&)q=([^&]*)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

async function main() {
  let state;
  try {
    state = await load();
  } catch (err) {
    refuse(err);
    return;
  }
  const form = document.getElementById('search-form');
  const input = document.getElementById('q');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    history.replaceState(null, '', '#q=' + encodeURIComponent(input.value));
    search(state, input.value);
  });
  const q = queryFromHash();
  if (q !== null) {
    input.value = q;
    await search(state, q);
  }
}

main();
