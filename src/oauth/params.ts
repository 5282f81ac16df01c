/**
 * Form and query parameters as OAuth reads them: every parameter at most once (RFC 6749 §3.1),
 * except `resource`, which may repeat (RFC 8707 §2).
 */
import { canonicalResource } from "../config/resources.js";
import { invalidRequest, invalidTarget } from "./errors.js";

export interface OAuthParams {
  params: Record<string, string | undefined>;
  /** Canonical resource URLs, in order, without duplicates. */
  resources: string[];
}

type Raw = Record<string, unknown> | undefined | null;

export function readParams(raw: Raw): OAuthParams {
  const params: Record<string, string | undefined> = {};
  let resources: string[] = [];
  for (const [name, value] of Object.entries(raw ?? {})) {
    const values = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v !== "string")) throw invalidRequest(`parameter ${name} must be a string`);
    if (name === "resource") {
      resources = values as string[];
      continue;
    }
    if (values.length > 1) throw invalidRequest(`parameter ${name} must not be repeated`);
    // Empty parameters are treated as omitted (RFC 6749 §3.1).
    if (values[0] !== "") params[name] = values[0] as string;
  }
  const canonical: string[] = [];
  for (const r of resources) {
    const c = canonicalResource(r);
    if (!c) throw invalidTarget(`resource must be an absolute http(s) URL without a fragment: ${r}`);
    if (!canonical.includes(c)) canonical.push(c);
  }
  return { params, resources: canonical };
}
