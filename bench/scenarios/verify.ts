/**
 * ForwardAuth throughput: `GET /verify?service=NAME` (the form every shipped proxy config
 * uses) with a valid token and the headers a reverse proxy sets (`X-Forwarded-Host`,
 * `X-Forwarded-Uri`, ...), against the bare node:http server answering the same request with
 * 200, at full load (10 connections), in alternating one-second slices (see `interleave`).
 */
import { interleave, load, type Row } from "../lib.js";

const ROUNDS = 6;
const SLICE_S = 1;
const WARMUP_S = 1;

export interface VerifyTarget {
  /** Gateway base URL. */
  gatewayUrl: string;
  /** A valid access token for `service`. */
  accessToken: string;
  service: string;
}

/**
 * One row: /verify against bare node:http. `variant` names a gateway run differently (the row
 * is then a reference, not judged).
 */
export async function verifyScenario(
  target: VerifyTarget,
  bare: { url: string },
  variant?: string,
): Promise<Row> {
  const headers = {
    authorization: `Bearer ${target.accessToken}`,
    "x-forwarded-host": new URL(target.gatewayUrl).host,
    "x-forwarded-uri": `/${target.service}/mcp`,
    "x-forwarded-proto": "http",
    "x-forwarded-method": "POST",
  };
  const path = `/verify?service=${target.service}`;
  const { subject, baseline } = await interleave(
    (duration) => load({ url: `${target.gatewayUrl}${path}`, headers, duration }),
    (duration) => load({ url: `${bare.url}${path}`, headers, duration }),
    { rounds: ROUNDS, sliceS: SLICE_S, warmupS: WARMUP_S },
  );
  return {
    scenario: `ForwardAuth GET /verify (valid token)${variant ? `, ${variant}` : ""}`,
    subject,
    baseline,
    baselineName: "bare node:http GET",
    ...(variant ? { target: "(reference)" } : { goal: { kind: "ratio" as const, min: 0.84 } }),
  };
}
