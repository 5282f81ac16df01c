/**
 * Reading a request body whole, for the requests the gateway must look into (a service with a
 * per-tool policy, or a 2026-07-28 request whose headers mirror its body): bounded by
 * `gateway.max_body`, and parsed as JSON without ever throwing. Every other request is
 * streamed to the upstream unread (proxy.ts).
 */
import type { IncomingMessage } from "node:http";

export type BodyRead =
  | { ok: true; bytes: Buffer }
  | { ok: false; reason: "too-large" | "aborted" | "encoded" };

/** Reads the whole body of `raw`, at most `limit` bytes. */
export function readBody(raw: IncomingMessage, limit: number): Promise<BodyRead> {
  const encoding = raw.headers["content-encoding"];
  // A compressed body cannot be looked into without inflating it: refused, never passed on unread.
  if (encoding !== undefined && encoding.trim().toLowerCase() !== "identity") {
    return Promise.resolve({ ok: false, reason: "encoded" });
  }
  if (Number(raw.headers["content-length"] ?? 0) > limit) {
    return Promise.resolve({ ok: false, reason: "too-large" });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let seen = 0;
    const done = (result: BodyRead) => {
      raw.off("data", onData);
      raw.off("end", onEnd);
      raw.off("error", onError);
      raw.off("close", onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limit) {
        raw.pause();
        done({ ok: false, reason: "too-large" });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => done({ ok: true, bytes: Buffer.concat(chunks, seen) });
    const onError = () => done({ ok: false, reason: "aborted" });
    const onClose = () => {
      if (!raw.readableEnded) done({ ok: false, reason: "aborted" });
    };
    raw.on("data", onData);
    raw.once("end", onEnd);
    raw.once("error", onError);
    raw.once("close", onClose);
  });
}

/** The body as JSON, or undefined when it is not JSON. */
export function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
}
