/**
 * The gateway under load, built from BENCH_CONFIG (JSON config tree). With BENCH_SEED_REFRESH=N
 * it also registers a client and seeds N refresh tokens (written to BENCH_TOKENS_FILE), so the
 * refresh-grant scenario can spend one per request. With BENCH_ACCESS_TOKEN_FOR=service it mints
 * one long-lived access token for that service, signed with the gateway's own key ring (the
 * token shape the authorization server issues, via test/support/mint.ts), and prints it as
 * `accessToken` in the READY line. With BENCH_LOG_DEVNULL=1 it logs as a default install does
 * (see below) instead of not at all. BENCH_CPU_PROFILE=FILE profiles the load only (below).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintAccessToken } from "../../test/support/mint.js";

// The gateway under test is the compiled one users run (dist/, built by `npm run bench`), not
// the TypeScript source through tsx, whose helpers add per-call work on the hot path.
const dist = (path: string) => new URL(`../../dist/${path}`, import.meta.url).href;
const { buildGateway } = (await import(dist("app.js"))) as typeof import("../../src/app.js");
const { logDestination } = (await import(
  dist("ops/log-output.js")
)) as typeof import("../../src/ops/log-output.js");
const { validateConfig } = (await import(
  dist("config/load.js")
)) as typeof import("../../src/config/load.js");

/** Long enough for any bench run: the token must not expire mid-scenario. */
const BENCH_ACCESS_TTL_S = 3600;

const tree = JSON.parse(process.env.BENCH_CONFIG ?? "{}") as Record<string, unknown>;
const config = validateConfig({
  log_level: "silent",
  data_dir: mkdtempSync(join(tmpdir(), "mcpgw-bench-")),
  ...tree,
});
// BENCH_LOG_DEVNULL=1: the gateway's own default logger (its level from the config) writing to
// /dev/null through the destination it gives stdout (log-output.ts logDestination).
const gateway = await buildGateway(
  config,
  process.env.BENCH_LOG_DEVNULL === "1" ? { logStream: logDestination("/dev/null") } : { logger: false },
);
const address = await gateway.app.listen({ port: config.port, host: "127.0.0.1" });

const info: Record<string, unknown> = { url: address };
const seed = Number(process.env.BENCH_SEED_REFRESH ?? 0);
if (seed > 0) {
  const clientId = randomUUID();
  const now = Math.floor(Date.now() / 1000);
  await gateway.as.clients.save({
    client_id: clientId,
    redirect_uris: ["http://127.0.0.1:9/cb"],
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    client_id_issued_at: now,
    client_secret_expires_at: 0,
    source: "admin",
  });
  const user = { sub: "bench", login: "bench", provider: "local" };
  // 200 at a time: tens of thousands of grants, seeded well within the READY timeout.
  const grant = async () => {
    const sid = randomUUID();
    await gateway.as.grants.saveGrant({
      sid,
      client_id: clientId,
      user,
      scope: [],
      resources: [],
      created_at: now,
      auth_time: now,
    });
    return gateway.as.grants.refresh.start(sid);
  };
  const tokens: string[] = [];
  while (tokens.length < seed)
    tokens.push(...(await Promise.all(Array.from({ length: Math.min(200, seed - tokens.length) }, grant))));
  const file = process.env.BENCH_TOKENS_FILE as string;
  writeFileSync(file, JSON.stringify(tokens));
  info.clientId = clientId;
  info.tokensFile = file;
}
const tokenFor = process.env.BENCH_ACCESS_TOKEN_FOR;
if (tokenFor) {
  const accessToken = await mintAccessToken(
    gateway.keys,
    {
      iss: config.public_url,
      aud: `${config.public_url}/${tokenFor}/mcp`,
      sub: "bench",
      client_id: "bench-client",
      preferred_username: "bench",
      email: "bench@example.com",
    },
    { ttl: BENCH_ACCESS_TTL_S },
  );
  info.accessToken = accessToken;
  info.publicUrl = config.public_url;
}
// BENCH_CPU_PROFILE=FILE: a CPU profile of the load only (from READY to SIGTERM), without the
// start-up and seeding that `--cpu-prof` would mix in.
const profileFile = process.env.BENCH_CPU_PROFILE;
const profiler = profileFile ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post("Profiler.enable");
  await profiler.post("Profiler.start");
}
process.stdout.write(`READY ${JSON.stringify(info)}\n`);
process.on("SIGTERM", async () => {
  if (profiler && profileFile) {
    const { profile } = await profiler.post("Profiler.stop");
    writeFileSync(profileFile, JSON.stringify(profile));
  }
  await gateway.app.close();
  process.exit(0);
});
