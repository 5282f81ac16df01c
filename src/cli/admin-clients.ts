/** `mcp-gateway admin clients …`: list, delete and purge registered OAuth clients. */
import type { Command } from "commander";
import { parseDuration } from "../config/duration.js";
import { type ClientRecord, ClientStore } from "../oauth/clients.js";
import { clientMatches, fail, grantsOf, type Opts, revokerFor, withStore } from "./admin-common.js";
import { isoSeconds, type ListFormat, printList, shortTime } from "./output.js";

interface ClientRow {
  client: ClientRecord;
  /** When the store drops it (epoch ms): the client lifetime, or the unused-registration TTL. */
  expiresAt?: number;
}

const CLIENT_LIST: ListFormat<ClientRow> = {
  json: ({ client: c, expiresAt }) => ({
    client_id: c.client_id,
    client_name: c.client_name,
    redirect_uris: c.redirect_uris,
    auth: c.token_endpoint_auth_method,
    source: c.source,
    issued: isoSeconds(c.client_id_issued_at),
    first_token: isoSeconds(c.first_token_at),
    last_used: isoSeconds(c.last_used_at),
    expires: expiresAt === undefined ? "never" : new Date(expiresAt).toISOString(),
  }),
  columns: [
    ["client id", ({ client }) => client.client_id],
    ["name", ({ client }) => client.client_name ?? "-"],
    ["auth", ({ client }) => client.token_endpoint_auth_method],
    ["registered", ({ client }) => shortTime(client.client_id_issued_at * 1000)],
    ["last used", ({ client }) => (client.last_used_at ? shortTime(client.last_used_at * 1000) : "never")],
    ["expires", ({ expiresAt }) => (expiresAt === undefined ? "never" : shortTime(expiresAt))],
  ],
};

type PurgeReason = "unused" | "expired";
interface PurgeRow {
  client: ClientRecord;
  reason: PurgeReason;
}

const PURGE_LIST: ListFormat<PurgeRow> = {
  json: ({ client, reason }) => ({
    client_id: client.client_id,
    client_name: client.client_name,
    issued: isoSeconds(client.client_id_issued_at),
    reason,
  }),
  columns: [
    ["client id", ({ client }) => client.client_id],
    ["name", ({ client }) => client.client_name ?? "-"],
    ["registered", ({ client }) => shortTime(client.client_id_issued_at * 1000)],
    ["reason", ({ reason }) => reason],
  ],
};

/**
 * Why a client should go, if it should: its lifetime is over, or it was registered at least
 * `unusedForSeconds` ago and never completed a token request. A client with a live grant has
 * completed one even without a mark (registered before clients were marked on first use).
 */
export function purgeReason(
  client: ClientRecord,
  withGrants: ReadonlySet<string>,
  unusedForSeconds: number,
  nowSeconds: number,
): PurgeReason | undefined {
  if (client.client_secret_expires_at && client.client_secret_expires_at <= nowSeconds) return "expired";
  const used = client.first_token_at !== undefined || withGrants.has(client.client_id);
  if (!used && client.client_id_issued_at <= nowSeconds - unusedForSeconds) return "unused";
  return undefined;
}

export function registerClients(admin: Command): void {
  const clients = admin.command("clients").description("registered OAuth clients");
  clients
    .command("list")
    .description("registered clients: a table on a terminal, JSON lines otherwise")
    .option("--client <id-or-name>", "only this client (its id, or part of its name)")
    .option("--user <login>", "only clients this user has granted access")
    .option("--json", "JSON lines even on a terminal")
    .option("-c, --config <file>")
    .action((opts: Opts & { client?: string; user?: string; json?: boolean }) =>
      withStore(opts, async (store, config) => {
        let rows = (await new ClientStore(store).listWithExpiry()).sort(
          (a, b) => a.client.client_id_issued_at - b.client.client_id_issued_at,
        );
        if (opts.client) rows = rows.filter((r) => clientMatches(r.client, opts.client as string));
        if (opts.user) {
          const login = opts.user.toLowerCase();
          const granted = new Set(
            (await grantsOf(store, config).listGrants())
              .filter((g) => g.user.login.toLowerCase() === login || g.user.sub === opts.user)
              .map((g) => g.client_id),
          );
          rows = rows.filter((r) => granted.has(r.client.client_id));
        }
        printList(rows, CLIENT_LIST, opts);
      }),
    );
  clients
    .command("delete <clientId>")
    .description("delete a client and revoke every token it holds")
    .option("-c, --config <file>")
    .action((clientId: string, opts: Opts) =>
      withStore(opts, async (store, config) => {
        if (!(await new ClientStore(store).delete(clientId))) fail(`no such client: ${clientId}`);
        await revokerFor(store, config).revokeClient(clientId);
        process.stdout.write(`deleted ${clientId}\n`);
      }),
    );
  clients
    .command("purge")
    .description(
      "delete clients that never completed a token request in DURATION since they registered, and expired ones",
    )
    .requiredOption("--unused-for <duration>", "e.g. 1h, 7d: how long a registration may stay unused")
    .option("--dry-run", "print what would be deleted, delete nothing")
    .option("--json", "JSON lines even on a terminal")
    .option("-c, --config <file>")
    .action((opts: Opts & { unusedFor: string; dryRun?: boolean; json?: boolean }) =>
      withStore(opts, async (store, config) => {
        let unusedFor: number;
        try {
          unusedFor = parseDuration(opts.unusedFor);
        } catch (err) {
          fail(`--unused-for: ${(err as Error).message}`);
        }
        const clientStore = new ClientStore(store);
        const withGrants = new Set((await grantsOf(store, config).listGrants()).map((g) => g.client_id));
        const now = Math.floor(Date.now() / 1000);
        const doomed: PurgeRow[] = [];
        for (const client of await clientStore.list()) {
          const reason = purgeReason(client, withGrants, unusedFor, now);
          if (reason) doomed.push({ client, reason });
        }
        if (!opts.dryRun) {
          const revoker = revokerFor(store, config);
          for (const { client, reason } of doomed) {
            await clientStore.delete(client.client_id);
            // An unused client holds no token; an expired one may still have some in flight.
            if (reason === "expired") await revoker.revokeClient(client.client_id);
          }
        }
        printList(doomed, PURGE_LIST, opts);
        process.stderr.write(
          opts.dryRun
            ? `would delete ${doomed.length} client(s) (dry run: nothing deleted)\n`
            : `deleted ${doomed.length} client(s)\n`,
        );
      }),
    );
}
