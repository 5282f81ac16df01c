/**
 * The two bridges the bridge scenario compares, each run as its real CLI in a child process on
 * loopback: `mcp-gateway bridge` (from dist/: `npm run build` first) and `supergateway
 * --outputTransport streamableHttp --stateful`. Stopping one checks that its whole process tree
 * went with it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, connect as netConnect } from "node:net";
import { treePids } from "../proctree.js";

/** The stdio MCP server both bridges wrap: the in-box `time` server. */
export const STDIO_SERVER = [process.execPath, "dist/services/time.js"];

/** A bridge that is listening. */
export interface Bridge {
  name: string;
  url: string;
  pid: number;
  /** Child processes it keeps with no session open. */
  idleChildren: number;
  /** SIGTERM, wait; then check no process of its tree outlived it. Returns the survivors. */
  stop(): Promise<number>;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = netConnect(port, "127.0.0.1");
      socket.once("connect", () => resolve(true)).once("error", () => resolve(false));
      socket.once("close", () => socket.destroy());
      socket.once("connect", () => socket.end());
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not listening on ${port} after ${timeoutMs} ms`);
}

/** Spawns `node script args…`; its stderr is kept (last lines) for the error message. */
function spawnNode(name: string, args: string[]): { child: ChildProcess; tail: () => string } {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let tail = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    tail = (tail + chunk.toString("utf8")).slice(-2000);
  });
  child.once("error", (err) => process.stderr.write(`${name}: ${err.message}\n`));
  return { child, tail: () => tail };
}

function bridgeHandle(name: string, url: string, child: ChildProcess, idleChildren: number): Bridge {
  const pid = child.pid as number;
  return {
    name,
    url,
    pid,
    idleChildren,
    async stop() {
      const tree = treePids(pid);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, "exit");
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      // Children are not waited on by us: give them a moment to follow their parent out.
      const deadline = Date.now() + 5000;
      let alive = tree.filter(isAlive);
      while (alive.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        alive = alive.filter(isAlive);
      }
      for (const p of alive) process.kill(p, "SIGKILL");
      return alive.length;
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `mcp-gateway bridge --mode MODE -- node dist/services/time.js`; `maxSessions` sets --max-sessions. */
export async function startOurs(mode: "per-session" | "shared", maxSessions: number): Promise<Bridge> {
  const { child, tail } = spawnNode("mcp-gateway bridge", [
    "bin/mcp-gateway.js",
    "bridge",
    "--port=0",
    `--mode=${mode}`,
    `--max-sessions=${maxSessions}`,
    "--",
    ...STDIO_SERVER,
  ]);
  const [line] = (await Promise.race([
    once(child.stdout as NodeJS.ReadableStream, "data"),
    once(child, "exit").then(() => {
      throw new Error(`mcp-gateway bridge exited: ${tail()} (did you run npm run build?)`);
    }),
  ])) as [Buffer];
  // A shared child outlives its sessions; per-session children end with theirs.
  return bridgeHandle(
    `mcp-gateway bridge --mode ${mode}`,
    line.toString("utf8").trim(),
    child,
    mode === "shared" ? 1 : 0,
  );
}

/** `supergateway --stdio "node dist/services/time.js" --outputTransport streamableHttp --stateful`. */
export async function startSupergateway(): Promise<Bridge> {
  const port = await freePort();
  const { child, tail } = spawnNode("supergateway", [
    "node_modules/supergateway/dist/index.js",
    "--stdio",
    STDIO_SERVER.join(" "),
    "--outputTransport",
    "streamableHttp",
    "--stateful",
    "--port",
    String(port),
    "--logLevel",
    "none",
  ]);
  child.stdout?.resume();
  await waitForPort(port, child).catch((err: Error) => {
    throw new Error(`supergateway: ${err.message}: ${tail()}`);
  });
  return bridgeHandle("supergateway --stateful", `http://127.0.0.1:${port}/mcp`, child, 0);
}
