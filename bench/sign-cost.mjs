// Signing cost of one ES256 access token: jose SignJWT (WebCrypto) vs node:crypto sign with a KeyObject (src/oauth/jws-signer.ts), alternating slices, process CPU (thread pool included) per token. node bench/sign-cost.mjs

import { createPrivateKey, sign } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

const { privateKey } = await generateKeyPair("ES256", { extractable: true });
const ko = createPrivateKey({ key: await exportJWK(privateKey), format: "jwk" });
const claims = {
  client_id: "c",
  sid: "s",
  sub: "42",
  iss: "https://x",
  aud: "https://x/gw/a/mcp",
  jti: crypto.randomUUID(),
  iat: 1,
  exp: 2,
  preferred_username: "octo",
  scope: "mcp offline_access",
};
const head = `${Buffer.from(JSON.stringify({ alg: "ES256", kid: "k", typ: "at+jwt" })).toString("base64url")}.`;
async function jose(n) {
  for (let i = 0; i < n; i++)
    await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "k", typ: "at+jwt" }).sign(privateKey);
}
async function node(n) {
  for (let i = 0; i < n; i++) {
    const input = head + Buffer.from(JSON.stringify(claims)).toString("base64url");
    const _s = sign("sha256", Buffer.from(input, "latin1"), { key: ko, dsaEncoding: "ieee-p1363" }).toString(
      "base64url",
    );
  }
}
const N = 2000;
const r = { jose: [], node: [] };
for (let round = 0; round < 4; round++)
  for (const [name, f] of [
    ["jose", jose],
    ["node", node],
  ]) {
    const c0 = process.cpuUsage();
    await f(N);
    const c = process.cpuUsage(c0);
    r[name].push(((c.user + c.system) / N).toFixed(1));
  }
console.log(
  "CPU µs per ES256 access token (process total, incl. thread pool), 4 alternating slices of 2000:",
  JSON.stringify(r),
);
