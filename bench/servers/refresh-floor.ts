/**
 * Baseline for the refresh grant: what any refresh on Redis must do, with nothing around it.
 * A bare node:http server that, per POST, reads the form (node:querystring), hashes the
 * presented token (SHA-256), rotates it in one Redis script through ioredis (two brake counters
 * with their expiry; the family read and compared; the grant read, decoded and checked against
 * the client, its revocation mark looked up; the successor's hash and sealed value written and
 * the grant's TTL renewed; the grant handed back), makes a successor (32 random bytes from a
 * pool), seals it for the grace window (AES-256-GCM), signs an ES256 access token with the
 * grant's claims (node:crypto, KeyObject) and answers the token JSON with no-store. No framework,
 * no config, no logging, no error handling beyond a 400: the ceiling a gateway of this design
 * could reach on this machine, run beside it.
 *
 * Env: BENCH_REDIS_URL. Tokens are `{family}.{secret}` (16 characters of family); the caller
 * seeds each family (`floor:fam:{family}` = SHA-256 of the token, base64url) and its grant
 * (`floor:grant:{family}`, JSON with sub, client_id, scope, resources) before spending them.
 */
import { createCipheriv, createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parse } from "node:querystring";
import { Redis } from "ioredis";

const ROTATE = `
for i = 1, 2 do
  local count = redis.call('INCR', KEYS[i])
  if redis.call('PTTL', KEYS[i]) == -1 then redis.call('PEXPIRE', KEYS[i], 60000) end
  if count > 1000000000 then return {'braked'} end
end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {'unknown'} end
local grantText = redis.call('GET', KEYS[5])
if not grantText or redis.call('EXISTS', KEYS[6]) == 1 then return {'unknown'} end
if cjson.decode(grantText).client_id ~= ARGV[5] then return {'unknown'} end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[3])
redis.call('PEXPIRE', KEYS[5], ARGV[3])
return {'rotated', grantText}`;

const redis = new Redis(process.env.BENCH_REDIS_URL as string, { enableAutoPipelining: true });
redis.defineCommand("rotate", { numberOfKeys: 6, lua: ROTATE });
const rotate = (redis as unknown as { rotate(...args: string[]): Promise<string[]> }).rotate.bind(redis);

interface Grant {
  sub: string;
  client_id: string;
  scope: string[];
  resources: string[];
}

// A KeyObject, as the gateway's signer holds (src/oauth/jws-signer.ts).
const { privateKey: key } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const head = `${Buffer.from(JSON.stringify({ alg: "ES256", kid: "floor", typ: "at+jwt" })).toString("base64url")}.`;
const sealKey = randomBytes(32);

// Random bytes from a pool filled 4 KiB at a time: one randomBytes call per value costs more
// than the value's use here (the gateway pools the same way, src/crypto/secrets.ts).
let pool = randomBytes(4096);
let used = 0;
function random(size: number): Buffer {
  if (used + size > pool.length) {
    pool = randomBytes(4096);
    used = 0;
  }
  used += size;
  return pool.subarray(used - size, used);
}
const hash = (s: string) => createHash("sha256").update(s).digest("base64url");

function accessToken(grant: Grant, sid: string): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: "http://127.0.0.1",
    sub: grant.sub,
    aud: grant.resources.length === 1 ? grant.resources[0] : grant.resources,
    client_id: grant.client_id,
    scope: grant.scope.join(" "),
    jti: random(16).toString("base64url"),
    sid,
    iat: now,
    exp: now + 3600,
  };
  const input = head + Buffer.from(JSON.stringify(claims)).toString("base64url");
  return `${input}.${sign("sha256", Buffer.from(input, "latin1"), { key, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
}

function seal(token: string, context: string): string {
  const iv = random(12);
  const cipher = createCipheriv("aes-256-gcm", sealKey, iv);
  cipher.setAAD(Buffer.from(context));
  const data = Buffer.concat([cipher.update(token, "utf8"), cipher.final()]);
  return `${iv.toString("base64url")}.${cipher.getAuthTag().toString("base64url")}.${data.toString("base64url")}`;
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", async () => {
    const form = parse(Buffer.concat(chunks).toString("latin1"));
    const token = form.refresh_token;
    const clientId = form.client_id;
    if (form.grant_type !== "refresh_token" || typeof token !== "string" || typeof clientId !== "string") {
      res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid_request"}');
      return;
    }
    const family = token.slice(0, 16);
    const successor = `${family}.${random(32).toString("base64url")}`;
    const [outcome, grantText] = await rotate(
      `floor:rate:c:${clientId}`,
      `floor:rate:a:${req.socket.remoteAddress}`,
      `floor:fam:${family}`,
      `floor:seal:${family}`,
      `floor:grant:${family}`,
      `floor:revoked:${family}`,
      hash(token),
      hash(successor),
      "2592000000",
      seal(successor, family),
      clientId,
    );
    if (outcome !== "rotated" || grantText === undefined) {
      res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid_grant"}');
      return;
    }
    const grant = JSON.parse(grantText) as Grant;
    const body = JSON.stringify({
      access_token: accessToken(grant, family),
      token_type: "Bearer",
      expires_in: 3600,
      refresh_token: successor,
      scope: grant.scope.join(" "),
    });
    res
      .writeHead(200, { "content-type": "application/json", "cache-control": "no-store", pragma: "no-cache" })
      .end(body);
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(
    `READY ${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`,
  );
});
process.on("SIGTERM", () => server.close(() => redis.quit().finally(() => process.exit(0))));
