// HPKE base mode (RFC 9180) with @hpke/core: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// AES-128-GCM or ChaCha20-Poly1305. Ops: "seal" (to a public key) and "open" (with a
// private key), each over a list of messages (sequence numbers 0, 1, ...) and one export.
import { bytes, hex, serve } from "./jsonlines.mjs";
import { Aes128Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";

export const AEADS = { 1: () => new Aes128Gcm(), 3: () => new Chacha20Poly1305() };

export function cipherSuite(aeadId) {
  if (!(aeadId in AEADS)) throw new Error(`unsupported AEAD ${aeadId}`);
  return new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: AEADS[aeadId]() });
}

async function seal(m) {
  const suite = cipherSuite(m.aead);
  const recipientPublicKey = await suite.kem.importKey("raw", bytes(m.pk).buffer, true);
  const ctx = await suite.createSenderContext({ recipientPublicKey, info: bytes(m.info) });
  const cts = [];
  for (const pt of m.pts) cts.push(hex(await ctx.seal(bytes(pt), bytes(m.aad))));
  const exported = hex(await ctx.export(bytes(m.exporter_context), m.export_len));
  return { enc: hex(ctx.enc), cts, exported };
}

async function open(m) {
  const suite = cipherSuite(m.aead);
  const recipientKey = await suite.kem.importKey("raw", bytes(m.sk).buffer, false);
  const ctx = await suite.createRecipientContext({ recipientKey, enc: bytes(m.enc), info: bytes(m.info) });
  const pts = [];
  for (const ct of m.cts) pts.push(hex(await ctx.open(bytes(ct), bytes(m.aad))));
  const exported = hex(await ctx.export(bytes(m.exporter_context), m.export_len));
  return { pts, exported };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await serve((m) => ({ seal, open })[m.op](m));
}
