/**
 * The caches' and the change feed's figures on /metrics, read from their plain counters at
 * scrape time (as request-metrics.ts does), so the hot path pays one increment per lookup:
 *
 *   mcpgw_cache_hits_total{cache}              lookups answered from the cache
 *   mcpgw_cache_misses_total{cache}            lookups that found nothing fresh
 *   mcpgw_cache_evictions_total{cache,reason}  entries gone: expired, size, invalidated, cleared
 *   mcpgw_cache_entries{cache}                 entries held now
 *   mcpgw_change_feed_received_total           changes heard from the store (events.ts)
 *   mcpgw_change_feed_resyncs_total            times the feed was lost and re-established
 *   mcpgw_change_feed_listening                1 while the feed is listening
 *
 * Caches: token_check (verified signatures), revocation (verdicts), cimd (metadata documents),
 * client_key_sets (the JWK sets of private_key_jwt clients' jwks_uri).
 */
import type { Metric, Registry } from "prom-client";
import type { CacheRegistry, CacheStats, RemovalCounts } from "../cache/ttl-cache.js";
import type { ChangeFeed } from "../store/events.js";

type Value = { value: number; labels: Record<string, string> };

function metric(name: string, help: string, type: "counter" | "gauge", values: () => Value[]): Metric {
  const spec = {
    name,
    get: async () => ({ name, help, type, aggregator: "sum", values: values() }),
  };
  return spec as unknown as Metric;
}

const REASONS: Array<keyof RemovalCounts> = ["expired", "size", "invalidated", "cleared"];

export function registerCacheMetrics(registry: Registry, caches: CacheRegistry, feed: ChangeFeed): void {
  const per = (read: (cache: CacheStats) => number) => () =>
    caches.all().map((cache) => ({ value: read(cache), labels: { cache: cache.name } }));
  registry.registerMetric(
    metric(
      "mcpgw_cache_hits_total",
      "Cache lookups answered from the cache",
      "counter",
      per((c) => c.hits),
    ),
  );
  registry.registerMetric(
    metric(
      "mcpgw_cache_misses_total",
      "Cache lookups that found nothing fresh",
      "counter",
      per((c) => c.misses),
    ),
  );
  registry.registerMetric(
    metric("mcpgw_cache_evictions_total", "Entries that left a cache, by reason", "counter", () =>
      caches
        .all()
        .flatMap((cache) =>
          REASONS.map((reason) => ({ value: cache.removed[reason], labels: { cache: cache.name, reason } })),
        ),
    ),
  );
  registry.registerMetric(
    metric(
      "mcpgw_cache_entries",
      "Entries held by a cache",
      "gauge",
      per((c) => c.size),
    ),
  );
  const one = (read: () => number) => () => [{ value: read(), labels: {} }];
  registry.registerMetric(
    metric(
      "mcpgw_change_feed_received_total",
      "Changes heard from the store's change feed",
      "counter",
      one(() => feed.stats().received),
    ),
  );
  registry.registerMetric(
    metric(
      "mcpgw_change_feed_resyncs_total",
      "Times the change feed was lost and re-established (caches dropped)",
      "counter",
      one(() => feed.stats().resyncs),
    ),
  );
  registry.registerMetric(
    metric(
      "mcpgw_change_feed_listening",
      "1 while the change feed is listening",
      "gauge",
      one(() => (feed.stats().listening ? 1 : 0)),
    ),
  );
}
