/**
 * deploy/systemd/mcp-gateway.service, as far as a machine without systemd as PID 1 can take it:
 *
 * - systemd's own parser: `systemd-analyze verify` on the unit installed into a scratch root
 *   (with an executable `mcp-gateway` there, as npm would put it), which reports every unknown
 *   key, bad value and missing command; `systemd-analyze security --offline` for the hardening.
 * - the unit's service run on this host as systemd would start it: ExecStart with its
 *   Environment= and EnvironmentFile= and WorkingDirectory=, as an unprivileged uid standing for
 *   the DynamicUser (when the test runs as root), and its state directory mapped to a temp dir.
 *   What cannot run here is the sandbox itself (namespaces, ProtectSystem=strict); the test
 *   checks that the gateway writes nowhere but that directory, which is all the sandbox allows.
 */
import {
  chmodSync,
  chownSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  parseEnvFile,
  parseUnitFile,
  type UnitFile,
  unitValue,
  unitValues,
} from "../support/deploy-files.js";
import { readableBy, runToEnd, type Spawned, startProcess } from "../support/spawned.js";
import { freePort } from "../support/upstream.js";

const ROOT = resolve(import.meta.dirname, "../..");
const UNIT_PATH = join(ROOT, "deploy/systemd/mcp-gateway.service");
const SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze";
const BUILT = existsSync(join(ROOT, "dist/cli/main.js"));
const HAVE_ANALYZE = existsSync(SYSTEMD_ANALYZE);
if (!HAVE_ANALYZE && process.env.CI === "true")
  throw new Error("systemd-analyze (Debian: systemd) is required in CI");
/** systemd's search path for a bare ExecStart command (systemd.service(5), "Command lines"). */
const SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";
/** A uid from systemd's DynamicUser range (61184–65519), a new one each run, as systemd picks one. */
const DYNAMIC_UID = 61_184 + Math.floor(Math.random() * 4_000);

const unit: UnitFile = parseUnitFile(readFileSync(UNIT_PATH, "utf8"));
const service = (key: string) => unitValue(unit, "Service", key);

/** `Environment=A=1 "B=two words"` as systemd splits it. */
function environmentAssignments(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    for (const m of value.matchAll(/"([^"]*)"|(\S+)/g)) {
      const item = (m[1] ?? m[2]) as string;
      const eq = item.indexOf("=");
      if (eq > 0) out[item.slice(0, eq)] = item.slice(eq + 1);
    }
  }
  return out;
}

describe("the systemd unit", () => {
  it("carries the hardening and runs as its own user with one writable data directory", () => {
    expect(service("NoNewPrivileges")).toBe("yes");
    expect(service("ProtectSystem")).toBe("strict");
    expect(service("ProtectHome")).toBe("yes");
    expect(service("PrivateTmp")).toBe("yes");
    expect(service("DynamicUser")).toBe("yes");
    expect(service("Restart")).toBe("on-failure");
    expect(service("StateDirectory")).toBe("mcp-gateway");
    const env = environmentAssignments(unitValues(unit, "Service", "Environment"));
    expect(env.MCP_GATEWAY_DATA_DIR).toBe("/var/lib/mcp-gateway");
    expect(unitValues(unit, "Service", "ReadWritePaths")).toEqual([env.MCP_GATEWAY_DATA_DIR]);
    expect(service("WorkingDirectory")).toBe(env.MCP_GATEWAY_DATA_DIR);
    expect(service("EnvironmentFile")).toBe("-/etc/mcp-gateway/env");
    expect(service("ExecStart")).toBe("mcp-gateway serve");
    // The JIT needs W+X pages: this one must stay off.
    expect(service("MemoryDenyWriteExecute")).toBeUndefined();
  });

  describe("systemd-analyze", { skip: !HAVE_ANALYZE }, () => {
    let root: string;
    beforeAll(() => {
      // A scratch root: the unit where an admin installs it, `mcp-gateway` where npm -g puts
      // it, and this machine's own system units for the targets the unit names.
      root = mkdtempSync(join(tmpdir(), "mcpgw-systemd-"));
      mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
      mkdirSync(join(root, "usr/bin"), { recursive: true });
      mkdirSync(join(root, "usr/lib/systemd"), { recursive: true });
      writeFileSync(join(root, "etc/systemd/system/mcp-gateway.service"), readFileSync(UNIT_PATH));
      // A copy, not a link: systemd resolves links inside the root it is given.
      copyFileSync(join(ROOT, "bin/mcp-gateway.js"), join(root, "usr/bin/mcp-gateway"));
      chmodSync(join(root, "usr/bin/mcp-gateway"), 0o755);
      cpSync("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), {
        recursive: true,
        verbatimSymlinks: true,
      });
    });
    afterAll(() => rmSync(root, { recursive: true, force: true }));

    it("verify: no unknown key, no bad value, the command found", async () => {
      const res = await runToEnd(SYSTEMD_ANALYZE, ["verify", `--root=${root}`, "mcp-gateway.service"], {
        env: { PATH: process.env.PATH ?? SYSTEMD_PATH, SYSTEMD_LOG_COLOR: "0" },
      });
      const output = `${res.stdout}${res.stderr}`;
      // Lines about the unit itself (file:line: message, or unit: message); the host's own
      // units may have their own complaints in a scratch root, which are not this file's.
      const ours = output.split("\n").filter((l) => l.includes("mcp-gateway.service"));
      expect(ours, output).toEqual([]);
      expect(res.status, output).toBe(0);
    });

    it("security --offline: exposure at most 3.5 of 10 (systemd's own scale: OK)", async () => {
      const res = await runToEnd(
        SYSTEMD_ANALYZE,
        [
          "security",
          "--offline=true",
          `--root=${root}`,
          "--threshold=35",
          "--no-pager",
          "mcp-gateway.service",
        ],
        { env: { PATH: process.env.PATH ?? SYSTEMD_PATH, SYSTEMD_LOG_COLOR: "0" } },
      );
      const output = `${res.stdout}${res.stderr}`;
      const score = /Overall exposure level for mcp-gateway\.service: ([\d.]+)/.exec(output)?.[1];
      expect(score, output).toBeDefined();
      console.log(`systemd-analyze security: exposure ${score}`);
      expect(Number(score)).toBeLessThanOrEqual(3.5);
      expect(res.status, output).toBe(0);
    });
  });

  describe("its service, run on this host as systemd would", {
    skip: !BUILT && process.env.CI !== "true",
  }, () => {
    let work: string;
    let stateDir: string;
    let gateway: Spawned | undefined;
    let port: number;
    // As root, the service runs as a DynamicUser-like uid, if that uid can read this checkout.
    const asRoot =
      process.getuid?.() === 0 &&
      readableBy(DYNAMIC_UID, DYNAMIC_UID, [
        join(ROOT, "dist/cli/main.js"),
        join(ROOT, "node_modules/fastify/package.json"),
      ]);
    if (process.getuid?.() === 0 && !asRoot)
      console.warn(`this checkout is not readable by uid ${DYNAMIC_UID}: the service runs as root instead`);

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), "mcpgw-unit-"));
      chmodSync(work, 0o755);
      port = await freePort();
      // Stand-ins for the paths the unit names: its StateDirectory, /etc/mcp-gateway/{gateway.yaml,env}.
      stateDir = join(work, "var/lib/mcp-gateway");
      // Only the last directory is the service's (0700); its parents stay traversable.
      mkdirSync(join(work, "var/lib"), { recursive: true });
      mkdirSync(stateDir, { mode: 0o700 });
      if (asRoot) chownSync(stateDir, DYNAMIC_UID, DYNAMIC_UID);
      const etc = join(work, "etc/mcp-gateway");
      mkdirSync(etc, { recursive: true });
      writeFileSync(join(etc, "gateway.yaml"), `port: ${port}\npublic_url: http://127.0.0.1:${port}\n`, {
        mode: 0o644,
      });
      writeFileSync(
        join(etc, "env"),
        "# read by systemd as root\nMCP_GATEWAY_KEYS__ENCRYPTION_SECRET=a-secret-only-root-can-read\n",
        { mode: 0o600 },
      );
      const bin = join(work, "usr/bin");
      mkdirSync(bin, { recursive: true });
      symlinkSync(join(ROOT, "bin/mcp-gateway.js"), join(bin, "mcp-gateway"));

      gateway = startUnit({ withEnvironmentFile: true });
      await gateway.waitFor(/listening on/, 60_000);
    });

    /** ExecStart with the unit's Environment=, EnvironmentFile= and WorkingDirectory=, as the unit's user. */
    function startUnit({ withEnvironmentFile }: { withEnvironmentFile: boolean }): Spawned {
      const bin = join(work, "usr/bin");
      const mapPath = (p: string) =>
        p.startsWith("/var/lib/mcp-gateway") || p.startsWith("/etc/mcp-gateway") ? join(work, p) : p;
      const declared = environmentAssignments(unitValues(unit, "Service", "Environment"));
      const envFile = service("EnvironmentFile")?.replace(/^-/, "") as string;
      const fromFile = withEnvironmentFile ? parseEnvFile(readFileSync(mapPath(envFile), "utf8")) : {};
      const env: NodeJS.ProcessEnv = { PATH: `${bin}:${SYSTEMD_PATH}`, LANG: "C.UTF-8" };
      for (const [k, v] of Object.entries({ ...declared, ...fromFile })) env[k] = mapPath(v);
      const [command, ...args] = (service("ExecStart") as string).split(/\s+/) as [string, ...string[]];
      return startProcess(join(bin, command), args, {
        cwd: mapPath(service("WorkingDirectory") as string),
        env,
        ...(asRoot ? { uid: DYNAMIC_UID, gid: DYNAMIC_UID } : {}),
      });
    }
    afterAll(async () => {
      await gateway?.stop();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it("serves on 127.0.0.1 with its data in the state directory, its secret from the EnvironmentFile", async () => {
      const out = gateway?.output() ?? "";
      expect(out).toContain(`listening on http://127.0.0.1:${port}`);
      expect(out).toContain(`config:   ${join(work, "etc/mcp-gateway/gateway.yaml")}`);
      expect(out).toContain(`store:    sqlite ${join(stateDir, "gateway.db")}`);
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      expect(readdirSync(stateDir)).toContain("gateway.db");
    });

    it("writes only where the sandbox lets it: the state directory, and /tmp made private by PrivateTmp", async () => {
      // As the unprivileged uid it can only write to world-writable places and its own
      // directory; of those, ProtectSystem=strict leaves it ReadWritePaths and the state
      // directory, plus /tmp and /var/tmp, which PrivateTmp=yes makes its own.
      if (!asRoot) return;
      const privateTmp = service("PrivateTmp") === "yes";
      const owned = await runToEnd(
        "find",
        ["/tmp", "/var/tmp", "/dev/shm", "-xdev", "-uid", String(DYNAMIC_UID)],
        {},
      );
      const forbidden = owned.stdout
        .split("\n")
        .filter(Boolean)
        .filter((p) => !p.startsWith(stateDir))
        .filter((p) => p.startsWith(work) || !privateTmp || !/^\/(var\/)?tmp\//.test(p));
      expect(forbidden).toEqual([]);
    });

    it("stops cleanly on SIGTERM (systemctl stop), within TimeoutStopSec", async () => {
      expect(await gateway?.stop()).toBe(0);
    });

    it("sealed its signing keys with the EnvironmentFile's secret: without the file it will not start", async () => {
      const again = startUnit({ withEnvironmentFile: false });
      await expect(again.waitFor(/listening on/, 60_000)).rejects.toThrow(/encryption_secret/);
      expect(again.child.exitCode).not.toBe(0);
    });
  });
});
