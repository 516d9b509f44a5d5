// Oblivious HTTP (RFC 9458) on @hpke/core, written from the RFC independently of attestlog:
// - "request": parse an application/ohttp-keys list (§3.1, §3.2), encapsulate a request to
//   its first Key Config (§4.3); the next line {"op": "response", "enc_response"} opens
//   the gateway's answer (§4.4) with that context;
// - "gateway": decapsulate a request with a private key, answer with an encapsulated
//   response (§4.3, §4.4), as a gateway would.
// The response key schedule uses node:crypto's HKDF (Extract then Expand, SHA-256).
import { bytes, hex, serve } from "./jsonlines.mjs";
import { hkdfSync, randomBytes } from "node:crypto";
import { cipherSuite, AEADS } from "./hpke.mjs";

const KEM_X25519 = 0x0020;
const NK = { 1: 16, 3: 32 }; // RFC 9180 §7.3
const NN = 12;
const LABEL_REQUEST = new TextEncoder().encode("message/bhttp request");
const LABEL_RESPONSE = new TextEncoder().encode("message/bhttp response");

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};

// application/ohttp-keys (§3.2): each Key Config prefixed by its 2-byte length.
export function parseKeyConfigs(raw) {
  const configs = [];
  for (let at = 0; at < raw.length;) {
    const len = (raw[at] << 8) | raw[at + 1];
    if (at + 2 + len > raw.length) throw new Error("truncated key config list");
    configs.push(parseKeyConfig(raw.slice(at + 2, at + 2 + len)));
    at += 2 + len;
  }
  return configs;
}

export function parseKeyConfig(raw) {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const keyId = v.getUint8(0), kemId = v.getUint16(1);
  if (kemId !== KEM_X25519) throw new Error(`unsupported KEM ${kemId}`);
  const pk = raw.slice(3, 35);
  const len = v.getUint16(35);
  if (len % 4 !== 0 || 37 + len !== raw.length) throw new Error("bad symmetric algorithms length");
  const suites = [];
  for (let at = 37; at < 37 + len; at += 4) suites.push({ kdf: v.getUint16(at), aead: v.getUint16(at + 2) });
  return { keyId, kemId, pk, suites };
}

function header(keyId, kdf, aead) {
  const h = new Uint8Array(7);
  const v = new DataView(h.buffer);
  v.setUint8(0, keyId); v.setUint16(1, KEM_X25519); v.setUint16(3, kdf); v.setUint16(5, aead);
  return h;
}

const info = (hdr) => concat(LABEL_REQUEST, new Uint8Array([0]), hdr);

async function responseAead(ctx, aead, enc, responseNonce) {
  const nk = NK[aead];
  const secret = new Uint8Array(await ctx.export(LABEL_RESPONSE, Math.max(nk, NN)));
  const salt = concat(enc, responseNonce);
  const key = new Uint8Array(hkdfSync("sha256", secret, salt, "key", nk));
  const nonce = new Uint8Array(hkdfSync("sha256", secret, salt, "nonce", NN));
  return { aeadCtx: AEADS[aead]().createEncryptionContext(key), nonce };
}

let pending = null; // the client's context between "request" and "response"

async function request(m) {
  const config = parseKeyConfigs(bytes(m.ohttp_keys))[0];
  const chosen = config.suites.find((s) => s.kdf === 1 && s.aead === m.aead);
  if (!chosen) throw new Error(`the key config does not offer AEAD ${m.aead}`);
  const hdr = header(config.keyId, chosen.kdf, chosen.aead);
  const suite = cipherSuite(chosen.aead);
  const recipientPublicKey = await suite.kem.importKey("raw", config.pk.buffer, true);
  const ctx = await suite.createSenderContext({ recipientPublicKey, info: info(hdr) });
  const enc = new Uint8Array(ctx.enc);
  const ct = new Uint8Array(await ctx.seal(bytes(m.request), new Uint8Array(0)));
  pending = { ctx, enc, aead: chosen.aead };
  return { enc_request: hex(concat(hdr, enc, ct)) };
}

async function response(m) {
  if (!pending) throw new Error("no request pending");
  const { ctx, enc, aead } = pending;
  pending = null;
  const raw = bytes(m.enc_response);
  const n = Math.max(NK[aead], NN);
  const { aeadCtx, nonce } = await responseAead(ctx, aead, enc, raw.slice(0, n));
  return { response: hex(await aeadCtx.open(nonce, raw.slice(n), new Uint8Array(0))) };
}

async function gateway(m) {
  const raw = bytes(m.enc_request);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const keyId = v.getUint8(0), kem = v.getUint16(1), kdf = v.getUint16(3), aead = v.getUint16(5);
  if (keyId !== m.key_id || kem !== KEM_X25519 || kdf !== 1) throw new Error("not our key or suite");
  const hdr = raw.slice(0, 7), enc = raw.slice(7, 39), ct = raw.slice(39);
  const suite = cipherSuite(aead);
  const recipientKey = await suite.kem.importKey("raw", bytes(m.sk).buffer, false);
  const ctx = await suite.createRecipientContext({ recipientKey, enc, info: info(hdr) });
  const req = new Uint8Array(await ctx.open(ct, new Uint8Array(0)));
  const responseNonce = new Uint8Array(randomBytes(Math.max(NK[aead], NN)));
  const { aeadCtx, nonce } = await responseAead(ctx, aead, enc, responseNonce);
  const sealed = new Uint8Array(await aeadCtx.seal(nonce, bytes(m.response), new Uint8Array(0)));
  return { request: hex(req), enc_response: hex(concat(responseNonce, sealed)) };
}

await serve((m) => ({ request, response, gateway })[m.op](m));
