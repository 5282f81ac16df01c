/**
 * Every file in deploy/ is one a test runs, and the one that cannot be run here (Traefik: not
 * in Debian, no downloads) says what the files that are run say.
 */
import { readdirSync, readFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { validateConfig } from "../../src/config/load.js";
import { deployFile } from "../support/proxies.js";

const DEPLOY = resolve(import.meta.dirname, "../../deploy");

/** Which test runs each shipped file (the test must name it). */
const RUN_BY: Record<string, string> = {
  "nginx/nginx.conf": "test/gateway/reverse-proxies.test.ts",
  "caddy/Caddyfile": "test/gateway/reverse-proxies.test.ts",
  "nginx/gateway.conf": "test/e2e/behind-proxy.test.ts",
  "caddy/Caddyfile.gateway": "test/e2e/behind-proxy.test.ts",
  "nginx/gateway-cluster.conf": "test/cluster/scale-out.test.ts",
  "caddy/Caddyfile.cluster": "test/cluster/scale-out-caddy.test.ts",
  "traefik/dynamic.yml": "test/gateway/deploy-files.test.ts",
  "compose/compose.yaml": "test/e2e/compose-on-host.test.ts",
  "compose/.env.example": "test/e2e/compose-on-host.test.ts",
  "compose/Caddyfile": "test/e2e/compose-on-host.test.ts",
  "systemd/mcp-gateway.service": "test/e2e/systemd.test.ts",
};

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [relative(DEPLOY, join(dir, entry.name))],
  );
}

describe("deploy/", () => {
  it("every configuration file there has a test that runs it", () => {
    const shipped = filesUnder(DEPLOY).filter((f) => !f.endsWith(".md"));
    expect(shipped.sort()).toEqual(Object.keys(RUN_BY).sort());
    for (const [file, test] of Object.entries(RUN_BY)) {
      // proxies.ts loads nginx.conf and the Caddyfile by default; the others are named.
      const source =
        readFileSync(resolve(test), "utf8") + readFileSync(resolve("test/support/proxies.ts"), "utf8");
      expect({ file, named: source.includes(basename(file)) }).toEqual({ file, named: true });
    }
  });

  it("the /verify files all name the service in the /verify URL", () => {
    expect(deployFile("nginx/nginx.conf")).toContain("/verify?service={{SERVICE}};");
    expect(deployFile("caddy/Caddyfile")).toContain("uri /verify?service={{SERVICE}}");
    expect(deployFile("traefik/dynamic.yml")).toContain('"{{GATEWAY}}/verify?service={{SERVICE}}"');
  });

  it("Traefik's dynamic.yml: the named service, its own forwarding headers, the gateway's identity, no credentials", () => {
    const config = parse(deployFile("traefik/dynamic.yml")) as {
      http: {
        middlewares: Record<string, Record<string, Record<string, unknown>>>;
        routers: Record<string, { rule: string; middlewares?: string[]; service: string }>;
      };
    };
    const { middlewares, routers } = config.http;
    const forward = middlewares["mcp-gateway-auth"]?.forwardAuth ?? {};
    expect(forward.address).toBe("{{GATEWAY}}/verify?service={{SERVICE}}");
    expect(forward.trustForwardHeader).toBe(false);
    const identity = validateConfig({}).gateway.identity_headers;
    expect(forward.authResponseHeaders).toEqual([
      identity.user_id,
      identity.user_name,
      identity.user_email,
      identity.client_id,
    ]);
    expect(middlewares["mcp-strip-credentials"]?.headers?.customRequestHeaders).toEqual({
      Authorization: "",
      Cookie: "",
    });
    const protectedRouter = routers["mcp-{{SERVICE}}"];
    expect(protectedRouter?.rule).toBe("Path(`/{{SERVICE}}/mcp`)");
    // The check comes first, then the credentials go.
    expect(protectedRouter?.middlewares?.slice(0, 2)).toEqual(["mcp-gateway-auth", "mcp-strip-credentials"]);
  });
});
