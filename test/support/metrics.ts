/** Reading one series from a gateway's /metrics, as Prometheus would scrape it. */

/** One sample of a /metrics series at `base` (labels matched exactly); undefined when absent. */
export async function metricSample(
  base: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`GET ${base}/metrics: ${res.status}`);
  const text = await res.text();
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(",");
  const series = want ? `${name}{${want}}` : name;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/** Requests a gateway's shortcut (`verify`, `mcp`) has answered since it started. */
export async function shortcutTaken(base: string, shortcut: "verify" | "mcp"): Promise<number> {
  return (await metricSample(base, "mcpgw_shortcut_requests_total", { shortcut })) ?? 0;
}
