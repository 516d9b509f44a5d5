// Line protocol shared by the interop scripts: one JSON object per stdin line, one JSON
// object per stdout line, in order; byte strings travel as lowercase hex. A handler may
// keep state between lines (a client that must finish what it began). Errors are answered
// as {"error": "..."} so the Python side can report them.
import { webcrypto } from "node:crypto";
import { createInterface } from "node:readline";

// Debian 12's nodejs is 18, where Web Crypto is not yet the global `crypto` (it is from node
// 19 on); @cloudflare/privacypass-ts calls the global. Import this module first.
if (globalThis.crypto === undefined) globalThis.crypto = webcrypto;

export const hex = (b) => Buffer.from(b instanceof ArrayBuffer ? new Uint8Array(b) : b).toString("hex");
export const bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));

export async function serve(handler) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let reply;
    try {
      reply = await handler(JSON.parse(line));
    } catch (err) {
      reply = { error: String(err && err.stack ? err.stack : err) };
    }
    process.stdout.write(JSON.stringify(reply) + "\n");
  }
}
