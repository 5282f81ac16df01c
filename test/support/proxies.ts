/**
 * Real nginx and Caddy, configured from the files shipped in deploy/ with their
 * `{{PLACEHOLDERS}}` filled in, as a user would: in front of an MCP server with the gateway's
 * /verify deciding, or in front of the gateway's own listener.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const NGINX = "/usr/sbin/nginx";
export const CADDY = "/usr/bin/caddy";
const DEPLOY = resolve(import.meta.dirname, "../../deploy");

export interface RunningProxy {
  url: string;
  /** stdout/stderr so far, for failure messages. */
  output(): string;
  close(): Promise<void>;
}

/** Replaces every `{{NAME}}`; throws if the template names a value that was not given. */
export function fillTemplate(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_m, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template needs {{${name}}}`);
    return String(value);
  });
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`proxy exited with ${child.exitCode}: ${output()}`);
    const ok = await new Promise<boolean>((done) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        done(true);
      });
      socket.once("error", () => done(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`proxy did not listen on ${port}: ${output()}`);
}

async function run(
  command: string,
  args: string[],
  port: number,
  dir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningProxy> {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], cwd: dir, env });
  let log = "";
  child.stdout?.on("data", (d) => {
    log += d;
  });
  child.stderr?.on("data", (d) => {
    log += d;
  });
  const output = () => log;
  try {
    await waitForPort(port, child, output);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    output,
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type ProxyValues = {
  PORT: number;
  GATEWAY: string;
  SERVICE: string;
  UPSTREAM_ADDR: string;
  UPSTREAM_PATH: string;
};

/** The placeholders of the files that put a proxy in front of the gateway's own listener. */
export type GatewayProxyValues = { PORT: number; GATEWAY: string };

/** A shipped file in deploy/, by its path there. */
export function deployFile(path: string): string {
  return readFileSync(join(DEPLOY, path), "utf8");
}

/**
 * nginx with a file from deploy/nginx/ (nginx.conf: auth_request in front of an MCP server;
 * gateway.conf: in front of the gateway), in the foreground, everything under a temp prefix.
 */
export async function startNginx(
  values: ProxyValues | GatewayProxyValues,
  file = "nginx/nginx.conf",
): Promise<RunningProxy> {
  return startNginxWith(deployFile(file), values);
}

/**
 * nginx with a config of the test's own: `{{PREFIX}}` (the temp dir, for pid, logs and temp
 * files) and the other placeholders filled from `values`; it must listen on `values.PORT`.
 */
export async function startNginxWith(
  template: string,
  values: Record<string, string | number> & { PORT: number },
): Promise<RunningProxy> {
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-nginx-"));
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, fillTemplate(template, { ...values, PREFIX: dir }));
  return run(
    NGINX,
    ["-p", dir, "-e", join(dir, "error.log"), "-c", conf, "-g", "daemon off;"],
    values.PORT,
    dir,
  );
}

/**
 * A whole nginx config for `startNginxWith`: one worker, pid, logs and every temp path under
 * `{{PREFIX}}` (nginx's compiled-in paths are not writable in a test), and one server on
 * 127.0.0.1:`{{PORT}}` whose body is `locations` (which may use further placeholders).
 */
export function nginxServerConf(locations: string): string {
  return `
worker_processes 1;
pid {{PREFIX}}/nginx.pid;
error_log {{PREFIX}}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path {{PREFIX}}/client_body;
  proxy_temp_path {{PREFIX}}/proxy;
  fastcgi_temp_path {{PREFIX}}/fastcgi;
  uwsgi_temp_path {{PREFIX}}/uwsgi;
  scgi_temp_path {{PREFIX}}/scgi;
  server {
    listen 127.0.0.1:{{PORT}};
${locations}
  }
}
`;
}

/**
 * Caddy with a file from deploy/caddy/ (Caddyfile: forward_auth in front of an MCP server;
 * Caddyfile.gateway: in front of the gateway), admin endpoint off, in the foreground.
 */
export async function startCaddy(
  values: ProxyValues | GatewayProxyValues,
  file = "caddy/Caddyfile",
): Promise<RunningProxy> {
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-caddy-"));
  const conf = join(dir, "Caddyfile");
  writeFileSync(conf, fillTemplate(deployFile(file), values));
  // Caddy's data and config dirs under the temp dir, so a test run leaves nothing behind.
  const env = {
    ...process.env,
    HOME: dir,
    XDG_DATA_HOME: join(dir, "data"),
    XDG_CONFIG_HOME: join(dir, "config"),
  };
  return run(CADDY, ["run", "--config", conf, "--adapter", "caddyfile"], values.PORT, dir, env);
}
