// Privacy Pass token type 0x0002 (RFC 9578 §6) with @cloudflare/privacypass-ts
// (BlindRSAMode.PSS = RSABSSA-SHA384-PSS-Deterministic, salt length 48). Ops:
// - "client_begin" {challenge, token_key}: their Client's TokenRequest for our issuer key;
//   the next line "client_finalize" {token_response} returns the Token;
// - "issue" {pkcs8, token_request}: their Issuer blind-signs with that private key, and
//   reports the token key (SPKI) it derives from it;
// - "verify" {token_key, token}: their Origin checks the token's authenticator.
import { bytes, hex, serve } from "./jsonlines.mjs"; // first: it sets the global crypto
import { TOKEN_TYPES, TokenChallenge, Token, publicVerif, util } from "@cloudflare/privacypass-ts";

const { BlindRSAMode, Client, Issuer, Origin, TokenRequest, getPublicKeyBytes } = publicVerif;
const MODE = BlindRSAMode.PSS;
const RSA_PSS = { name: "RSA-PSS", hash: "SHA-384" };

let client = null;

async function clientBegin(m) {
  client = new Client(MODE);
  const challenge = TokenChallenge.deserialize(bytes(m.challenge));
  const request = await client.createTokenRequest(challenge, bytes(m.token_key));
  return { token_request: hex(request.serialize()) };
}

async function clientFinalize(m) {
  if (!client) throw new Error("no token request pending");
  const token = await client.finalize(client.deserializeTokenResponse(bytes(m.token_response)));
  client = null;
  return { token: hex(token.serialize()) };
}

async function issue(m) {
  const privateKey = await crypto.subtle.importKey("pkcs8", bytes(m.pkcs8), RSA_PSS, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = await crypto.subtle.importKey(
    "jwk", { kty: jwk.kty, n: jwk.n, e: jwk.e, alg: jwk.alg, ext: true }, RSA_PSS, true, ["verify"]);
  const issuer = new Issuer(MODE, "issuer.example", privateKey, publicKey);
  const request = TokenRequest.deserialize(TOKEN_TYPES.BLIND_RSA, bytes(m.token_request));
  const response = await issuer.issue(request);
  return { token_response: hex(response.serialize()),
           token_key: hex(await getPublicKeyBytes(publicKey)) };
}

async function verify(m) {
  const spki = util.convertRSASSAPSSToEnc(bytes(m.token_key));
  const key = await crypto.subtle.importKey("spki", spki, RSA_PSS, true, ["verify"]);
  const token = Token.deserialize(TOKEN_TYPES.BLIND_RSA, bytes(m.token));
  return { valid: await new Origin(MODE).verify(token, key) };
}

await serve((m) => ({ client_begin: clientBegin, client_finalize: clientFinalize, issue, verify })[m.op](m));
