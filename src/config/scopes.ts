/**
 * Every scope a service can ask a token for: its own (needed for any request) and those its
 * per-tool policy adds (needed for some tools only, asked for by step-up). The authorization
 * server grants only known scopes, and protected resource metadata lists these.
 */
import type { ServiceConfig } from "./schema.js";

export function serviceScopesSupported(service: Pick<ServiceConfig, "scopes" | "tools">): string[] {
  const all = new Set(service.scopes);
  for (const rule of Object.values(service.tools ?? {})) for (const s of rule.scopes) all.add(s);
  return [...all];
}
