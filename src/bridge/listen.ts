/**
 * `subscriptions/listen` for a 2025 child: the child's list-changed and resource-updated
 * notifications, filtered per stream and stamped with the stream's subscription id. Resource
 * subscriptions become `resources/subscribe` to the child, one per URI however many streams
 * want it, and `resources/unsubscribe` when the last one goes.
 */
import { META } from "./envelope.js";
import type { Exchange } from "./exchange.js";
import type { JsonRpcId, JsonRpcMessage } from "./jsonrpc.js";
import type { Upstream } from "./upstream.js";

/** What a listen stream asked for (and, in the acknowledgement, what it gets). */
export interface SubscriptionFilter {
  toolsListChanged?: boolean;
  promptsListChanged?: boolean;
  resourcesListChanged?: boolean;
  resourceSubscriptions?: string[];
}

interface Listener {
  id: JsonRpcId;
  filter: SubscriptionFilter;
  exchange: Exchange;
}

const FLAG_OF: Record<string, keyof SubscriptionFilter> = {
  "notifications/tools/list_changed": "toolsListChanged",
  "notifications/prompts/list_changed": "promptsListChanged",
  "notifications/resources/list_changed": "resourcesListChanged",
};

/** The part of `asked` a child with these capabilities can honor; the rest is left out. */
export function honoredFilter(asked: unknown, capabilities: Record<string, unknown>): SubscriptionFilter {
  const want = (asked ?? {}) as SubscriptionFilter;
  const cap = (name: string) => (capabilities[name] ?? undefined) as Record<string, unknown> | undefined;
  const out: SubscriptionFilter = {};
  if (want.toolsListChanged === true && cap("tools")?.listChanged) out.toolsListChanged = true;
  if (want.promptsListChanged === true && cap("prompts")?.listChanged) out.promptsListChanged = true;
  if (want.resourcesListChanged === true && cap("resources")?.listChanged) out.resourcesListChanged = true;
  const uris = Array.isArray(want.resourceSubscriptions)
    ? want.resourceSubscriptions.filter((u): u is string => typeof u === "string")
    : [];
  if (uris.length > 0 && cap("resources")?.subscribe) out.resourceSubscriptions = [...new Set(uris)];
  return out;
}

export class ListenHub {
  private readonly listeners = new Set<Listener>();
  private readonly uriCounts = new Map<string, number>();
  private readonly onChange = (msg: JsonRpcMessage) => this.publish(msg);

  constructor(private readonly upstream: Upstream) {
    upstream.changeListeners.add(this.onChange);
  }

  get size(): number {
    return this.listeners.size;
  }

  /** Open a stream: acknowledge the honored filter, then pass on what matches it. */
  add(id: JsonRpcId, asked: unknown, exchange: Exchange): void {
    const filter = honoredFilter(asked, this.upstream.initialized?.capabilities ?? {});
    const listener: Listener = { id, filter, exchange };
    this.listeners.add(listener);
    for (const uri of filter.resourceSubscriptions ?? []) {
      const count = this.uriCounts.get(uri) ?? 0;
      this.uriCounts.set(uri, count + 1);
      if (count === 0) void this.upstream.call("resources/subscribe", { uri });
    }
    exchange.push({
      jsonrpc: "2.0",
      method: "notifications/subscriptions/acknowledged",
      params: { notifications: filter, _meta: { [META.subscriptionId]: id } },
    });
  }

  /** A stream went away (the client cancelled or disconnected). */
  remove(id: JsonRpcId, exchange: Exchange): void {
    for (const listener of this.listeners) {
      if (listener.id !== id || listener.exchange !== exchange) continue;
      this.listeners.delete(listener);
      for (const uri of listener.filter.resourceSubscriptions ?? []) {
        const count = (this.uriCounts.get(uri) ?? 1) - 1;
        if (count > 0) {
          this.uriCounts.set(uri, count);
        } else {
          this.uriCounts.delete(uri);
          if (this.upstream.child.running) void this.upstream.call("resources/unsubscribe", { uri });
        }
      }
    }
  }

  /** End every stream with the listen request's (empty) result: the child is gone or the bridge closes. */
  closeAll(): void {
    this.upstream.changeListeners.delete(this.onChange);
    for (const { id, exchange } of this.listeners) {
      exchange.respond({ jsonrpc: "2.0", id, result: { resultType: "complete" } });
    }
    this.listeners.clear();
    this.uriCounts.clear();
  }

  ping(): void {
    for (const { exchange } of this.listeners) exchange.ping();
  }

  private publish(msg: JsonRpcMessage): void {
    const params = (msg.params ?? {}) as Record<string, unknown>;
    const flag = FLAG_OF[msg.method as string];
    for (const { id, filter, exchange } of this.listeners) {
      const wanted = flag
        ? filter[flag] === true
        : typeof params.uri === "string" && (filter.resourceSubscriptions ?? []).includes(params.uri);
      if (!wanted) continue;
      const meta = { ...((params._meta as object | undefined) ?? {}), [META.subscriptionId]: id };
      exchange.push({ ...msg, params: { ...params, _meta: meta } });
    }
  }
}
