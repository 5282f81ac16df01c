/** The server under fastify: fastify's own timeouts, shortcuts first, fastify for the rest. */
import Fastify, { type FastifyInstance } from "fastify";
import { Pool } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { Shortcuts } from "../../src/http/server.js";

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(shortcuts: Shortcuts, options: Record<string, number> = {}): Promise<string> {
  app = Fastify({ logger: false, serverFactory: shortcuts.serverFactory, ...options });
  app.get("/*", async (req) => ({ answeredBy: "fastify", url: req.url }));
  return app.listen({ port: 0, host: "127.0.0.1" });
}

describe("Shortcuts.serverFactory", () => {
  it("gives the server fastify's timeouts", async () => {
    await start(new Shortcuts(), { keepAliveTimeout: 4321, requestTimeout: 9876, maxRequestsPerSocket: 7 });
    const server = app?.server;
    expect(server?.keepAliveTimeout).toBe(4321);
    expect(server?.requestTimeout).toBe(9876);
    expect(server?.maxRequestsPerSocket).toBe(7);
  });

  it("lets a shortcut answer, and fastify answer what it declines", async () => {
    const shortcuts = new Shortcuts();
    shortcuts.add("test", (req, res) => {
      if (req.url !== "/fast") return false;
      res.writeHead(200, { "content-type": "text/plain" }).end("shortcut");
      return true;
    });
    const url = await start(shortcuts);
    expect(await (await fetch(`${url}/fast`)).text()).toBe("shortcut");
    expect(await (await fetch(`${url}/slow`)).json()).toEqual({ answeredBy: "fastify", url: "/slow" });
  });

  it("a shortcut that throws before answering leaves the request to fastify, and is reported", async () => {
    const shortcuts = new Shortcuts();
    const errors: unknown[] = [];
    shortcuts.onError = (err) => errors.push(err);
    shortcuts.add("test", () => {
      throw new Error("broken shortcut");
    });
    const url = await start(shortcuts);
    const res = await fetch(`${url}/any`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ answeredBy: "fastify", url: "/any" });
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe("broken shortcut");
  });

  it("a shortcut that throws after a full answer keeps the answer and the connection", async () => {
    const shortcuts = new Shortcuts();
    shortcuts.add("test", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" }).end("done");
      throw new Error("broken after answering");
    });
    const url = await start(shortcuts);
    let connections = 0;
    app?.server.on("connection", () => connections++);
    const pool = new Pool(url, { connections: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await pool.request({ method: "GET", path: "/x" });
        expect(await res.body.text()).toBe("done");
      }
    } finally {
      await pool.close();
    }
    expect(connections).toBe(1);
  });

  it("a shortcut that throws mid-answer ends that connection, and the server lives on", async () => {
    const shortcuts = new Shortcuts();
    shortcuts.add("test", (req, res) => {
      if (req.url !== "/half") return false;
      res.writeHead(200, { "content-type": "text/plain", "content-length": "100" });
      res.write("partial");
      throw new Error("broken after the headers");
    });
    const url = await start(shortcuts);
    await expect(fetch(`${url}/half`).then((r) => r.text())).rejects.toThrow();
    expect((await fetch(`${url}/after`)).status).toBe(200);
  });
});
