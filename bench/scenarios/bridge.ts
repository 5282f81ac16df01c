/**
 * The stdio bridge against supergateway (npm), both wrapping the same stdio MCP server (the
 * in-box `time` server, `node dist/services/time.js`), both real CLIs run as child processes
 * on loopback in the same run:
 *
 * - `mcp-gateway bridge --mode per-session` (dist/, so `npm run build` first);
 * - `supergateway --stdio … --outputTransport streamableHttp --stateful`: its stateful mode
 *   spawns one child per session (through `sh -c`), like our `per-session`; its stateless mode
 *   spawns one child per request and has no sessions at all, so it is not the one to compare.
 *
 * Two measurements: `tools/call` throughput over real sessions (initialize, initialized, then
 * calls spread over the session ids, every body checked for a result), and memory per session
 * (RSS and PSS of the bridge's whole process tree before and after opening SESSIONS sessions).
 * Beside the session row, ours serves the same calls as stateless 2026-07-28 requests (no
 * session: the `_meta` envelope on each), spread over SESSIONS users, so over as many pooled
 * children as the session row has; supergateway speaks no 2026-07-28, so its session row is the
 * baseline there too.
 * A third bridge, ours in `shared` mode (one child for every session), is measured for memory
 * only, as a reference row: supergateway has no mode to compare it with.
 */
import { interleaveAll, type LoadResult, type MemoryRow, type Row, type SessionMemory } from "../lib.js";
import { type TreeMemory, treeMemory, treePids } from "../proctree.js";
import {
  checkedLoad,
  isTimeResult,
  MCP_HEADERS,
  openSession,
  openSessions,
  sessionCallLoad,
} from "../sessions.js";
import { type Bridge, startOurs, startSupergateway } from "./bridge-procs.js";

/** Sessions opened on each bridge: the memory sample, then the throughput run's session pool. */
const SESSIONS = Number(process.env.BENCH_BRIDGE_SESSIONS ?? 20);
const ROUNDS = 4;
const SLICE_S = 2;
const WARMUP_S = 1;
/** Time for freshly started children to finish loading before RSS is read. */
const SETTLE_MS = 1500;
/** Sessions opened at once: each one spawns a node child (per-session mode). */
const SPAWNING_AT_ONCE = 4;
/** The same call as a stateless 2026-07-28 request. */
function statelessCallBody(id: number): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: {
      name: "get_current_time",
      arguments: { timezone: "UTC" },
      _meta: {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { name: "bench", version: "1" },
      },
    },
  });
}

const STATELESS_HEADERS = {
  ...MCP_HEADERS,
  "mcp-protocol-version": "2026-07-28",
  "mcp-method": "tools/call",
  "mcp-name": "get_current_time",
};

/** The user a stateless request comes from (the identity header the gateway would set). */
function benchUser(n: number): string {
  return `bench-user-${n % SESSIONS}`;
}

/** One checked stateless call per user: the bridge's pool then has a child for each. */
async function warmStateless(url: string): Promise<void> {
  for (let n = 0; n < SESSIONS; n += 4) {
    await Promise.all(
      Array.from({ length: Math.min(4, SESSIONS - n) }, async (_, i) => {
        const res = await fetch(url, {
          method: "POST",
          headers: { ...STATELESS_HEADERS, "x-user-id": benchUser(n + i) },
          body: statelessCallBody(n + i),
        });
        const text = await res.text();
        if (res.status !== 200 || !isStatelessResult(text)) {
          throw new Error(`stateless tools/call at ${url} answered ${res.status}: ${text.slice(0, 300)}`);
        }
      }),
    );
  }
}

/** A stateless tools/call answer carrying the tool's result, marked complete. */
function isStatelessResult(body: string): boolean {
  return body.includes('"resultType":"complete"') && isTimeResult(body);
}

/** Stateless tools/call at full load, each request from the next user with a fresh JSON-RPC id. */
function statelessLoad(url: string) {
  return checkedLoad(
    url,
    STATELESS_HEADERS,
    (n) => ({ headers: { "x-user-id": benchUser(n) }, body: statelessCallBody(n + 100) }),
    isStatelessResult,
  );
}

async function closeSessions(url: string, sids: string[]): Promise<number> {
  let failed = 0;
  for (const sid of sids) {
    const res = await fetch(url, { method: "DELETE", headers: { ...MCP_HEADERS, "mcp-session-id": sid } });
    await res.text();
    if (res.status !== 200) failed++;
  }
  return failed;
}

/** Waits until the bridge has no more than `children` child processes (DELETE ends them asynchronously). */
async function waitForChildren(pid: number, children: number, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (treePids(pid).length - 1 <= children) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

const MIB = 1024 * 1024;

function perSessionMemory(m: { before: TreeMemory; after: TreeMemory }): SessionMemory {
  const per = (key: keyof TreeMemory) => (m.after[key] - m.before[key]) / SESSIONS / MIB;
  return {
    rssMiB: per("rss"),
    pssMiB: per("pss"),
    parentMiB: per("parentRss"),
    processes: m.after.processes - m.before.processes,
  };
}

/**
 * Warm-up session (first-request costs such as lazy modules and JIT are not per-session
 * costs), then the tree's memory before and after opening SESSIONS sessions, left open.
 */
async function measureSessions(
  bridge: Bridge,
  failures: string[],
): Promise<{ before: TreeMemory; after: TreeMemory; sids: string[] }> {
  const warm = await openSession({ url: bridge.url });
  if (await closeSessions(bridge.url, [warm])) failures.push(`${bridge.name}: DELETE failed`);
  if (!(await waitForChildren(bridge.pid, bridge.idleChildren))) {
    failures.push(`${bridge.name}: warm-up child did not exit`);
  }
  const before = treeMemory(bridge.pid);
  const sids = await openSessions({ url: bridge.url }, SESSIONS, SPAWNING_AT_ONCE);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return { before, after: treeMemory(bridge.pid), sids };
}

/**
 * DELETEs the sessions and checks their children go (per-session) or the shared one stays;
 * `keep` more children may stay (the stateless pool, ended only when idle).
 */
async function endSessions(bridge: Bridge, sids: string[], failures: string[], keep = 0): Promise<void> {
  const failed = await closeSessions(bridge.url, sids);
  if (failed) failures.push(`${bridge.name}: ${failed} DELETE(s) failed`);
  if (!(await waitForChildren(bridge.pid, bridge.idleChildren + keep))) {
    failures.push(`${bridge.name}: children left after DELETE`);
  }
}

export interface BridgeResults {
  rows: Row[];
  memory: MemoryRow[];
  /** Clean-up that went wrong (failed DELETEs, children left behind): the run fails on any. */
  failures: string[];
}

/**
 * The bridge group: a throughput row (in the main table) and memory rows: ours per-session
 * against supergateway --stateful (judged), and ours shared against the same (reference only:
 * supergateway has no mode where sessions share a child).
 */
export async function bridgeScenarios(): Promise<BridgeResults> {
  const failures: string[] = [];
  const started: Bridge[] = [];
  const open = new Map<Bridge, string[]>();
  try {
    // Room for the sessions and, beside them, the stateless pool's children.
    const ours = await startOurs("per-session", 2 * SESSIONS + 10);
    started.push(ours);
    const theirs = await startSupergateway();
    started.push(theirs);
    const memory = new Map<Bridge, { before: TreeMemory; after: TreeMemory }>();
    for (const bridge of [ours, theirs]) {
      const measured = await measureSessions(bridge, failures);
      open.set(bridge, measured.sids);
      memory.set(bridge, measured);
    }
    await warmStateless(ours.url);
    const [oursSessions, theirSessions, oursStateless] = (await interleaveAll(
      [
        sessionCallLoad({ url: ours.url }, open.get(ours) ?? []),
        sessionCallLoad({ url: theirs.url }, open.get(theirs) ?? []),
        statelessLoad(ours.url),
      ],
      { rounds: ROUNDS, sliceS: SLICE_S, warmupS: WARMUP_S },
    )) as [LoadResult, LoadResult, LoadResult];
    for (const bridge of [ours, theirs]) {
      await endSessions(bridge, open.get(bridge) ?? [], failures, bridge === ours ? SESSIONS : 0);
      open.delete(bridge);
    }
    // Shared mode only after the throughput run, so its child does not compete with it.
    const shared = await startOurs("shared", SESSIONS + 10);
    started.push(shared);
    const sharedMemory = await measureSessions(shared, failures);
    open.set(shared, sharedMemory.sids);
    await endSessions(shared, sharedMemory.sids, failures);
    open.delete(shared);

    const of = (b: Bridge) => perSessionMemory(memory.get(b) as { before: TreeMemory; after: TreeMemory });
    return {
      rows: [
        {
          scenario: `bridge tools/call, ${SESSIONS} sessions (child per session)`,
          subject: oursSessions,
          baseline: theirSessions,
          baselineName: theirs.name,
          goal: { kind: "ratio", min: 2.5 },
        },
        {
          scenario: `bridge tools/call, stateless 2026-07-28, ${SESSIONS} users (child per user)`,
          subject: oursStateless,
          baseline: theirSessions,
          baselineName: `${theirs.name} (sessions)`,
          goal: { kind: "ratio", min: 2.5 },
        },
      ],
      memory: [
        {
          scenario: `bridge memory per session, ${SESSIONS} sessions (child per session)`,
          subject: of(ours),
          baseline: of(theirs),
          subjectName: ours.name,
          baselineName: theirs.name,
        },
        {
          scenario: `bridge memory per session, ${SESSIONS} sessions (ours: one shared child)`,
          subject: perSessionMemory(sharedMemory),
          baseline: of(theirs),
          subjectName: shared.name,
          baselineName: theirs.name,
          reference: true,
        },
      ],
      failures,
    };
  } finally {
    for (const [bridge, sids] of open) await closeSessions(bridge.url, sids).catch(() => 0);
    for (const bridge of started) {
      const left = await bridge.stop();
      if (left) failures.push(`${bridge.name}: ${left} process(es) outlived it (killed)`);
    }
  }
}
