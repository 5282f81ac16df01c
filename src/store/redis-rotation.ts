/**
 * {@link RefreshRotation} on Redis: one Lua script, so the decision and its writes are one
 * atomic step on the server whatever number of gateways send it. Its three keys carry the grant
 * id as a hash tag (`…:{sid}…`), so on Redis Cluster they live in one slot, as a script's keys
 * must. The SQLite version (sqlite-rotation.ts) makes the same decision.
 *
 * Values are the same JSON text every other store operation reads and writes; the family holds
 * scalars only, so cjson's re-encoding cannot turn an empty array into an object.
 *
 * A reply can be lost after Redis ran the script (Redis stopped or the connection cut between
 * the write and the answer): the gateway then answers 503 and the client, which never saw the
 * successor, retries with the predecessor, maybe long after the grace window. So the script
 * keeps the sealed successor for the family's lifetime, and the gateway, once it has the reply
 * in hand, shortens that to the grace window (CONFIRM_ROTATION_LUA). Only a rotation whose
 * answer never reached the gateway keeps its predecessor answerable (with the same successor)
 * until the successor is first used.
 */
import type {
  RefreshRotation,
  RefreshStep,
  RefreshStepOutcome,
  RotationOutcome,
} from "./refresh-rotation.js";
import type { Json } from "./store.js";
import { ttlToMillis } from "./validate.js";

/**
 * Lua: runs the confirmations among KEYS from `firstKey`, each with an ARGV pair from
 * `firstArg`; defines setWithTtl (SET with PX, or without a TTL for '0').
 */
const confirmations = (firstKey: number | string, firstArg: number | string) => `
for i = ${firstKey}, #KEYS do
  local raw = redis.call('GET', KEYS[i])
  local j = ${firstArg} + (i - (${firstKey})) * 2
  if raw and cjson.decode(raw)['for'] == ARGV[j] then redis.call('PEXPIRE', KEYS[i], ARGV[j + 1]) end
end
local function setWithTtl(key, value, ms)
  if ms == '0' then redis.call('SET', key, value) else redis.call('SET', key, value, 'PX', ms) end
end`;

/**
 * Lua: `presented` is the family's current token: the successor becomes current, `presented`
 * its predecessor with a rotated mark, and the sealed successor is kept for the window (KEYS
 * 1-3 and ARGV 1-7 as in ROTATE_REFRESH_LUA).
 */
const ROTATE_CURRENT = `
  local now = tonumber(ARGV[5])
  local nextFamily = { current = ARGV[2], previous = presented, issued_at = tonumber(ARGV[4]), rotated_at = now }
  setWithTtl(KEYS[1], cjson.encode(nextFamily), ARGV[6])
  setWithTtl(KEYS[3], cjson.encode({ at = now }), ARGV[6])
  if ARGV[7] ~= '' then
    local successor = { ['for'] = presented }
    if ARGV[3] ~= '' then successor.sealed = ARGV[3] end
    setWithTtl(KEYS[2], cjson.encode(successor), ARGV[7])
  else
    redis.call('DEL', KEYS[2])
  end`;

/**
 * KEYS: family, sealed successor, rotated mark of the presented token, the entry written
 *       alongside (RefreshRotation.alongside; any of the other keys when there is none), then
 *       the sealed successors of earlier rotations to confirm (CONFIRM_ROTATION_LUA), if any.
 * ARGV: presented hash, successor hash, sealed successor ('' = none), successor issued_at (s),
 *       now (ms), family and mark TTL (ms, '0' = none), sealed successor TTL until the
 *       rotation is confirmed (ms, '0' = none; '' = no grace window at all), the alongside
 *       entry's JSON text ('' = none), its TTL (ms, '0' = none), then for each confirmation
 *       its presented hash and grace (ms), in KEYS order.
 *
 * The confirmations ride along (redis.ts): an instance that keeps rotating confirms what it
 * rotated before in the command it sends anyway, instead of in one more command and one more
 * write to the socket. They run first, whatever the rotation decides, and each changes only a
 * successor still recorded for the token it names.
 */
export const ROTATE_REFRESH_LUA = `${confirmations(5, 10)}
local function alongside()
  if ARGV[8] ~= '' then setWithTtl(KEYS[4], ARGV[8], ARGV[9]) end
end
local raw = redis.call('GET', KEYS[1])
if not raw then return {'unknown'} end
local family = cjson.decode(raw)
local presented = ARGV[1]
if family.current == presented then${ROTATE_CURRENT}
  alongside()
  return {'rotated'}
end
if family.previous == presented then
  local sealed = redis.call('GET', KEYS[2])
  if sealed then
    local successor = cjson.decode(sealed)
    if successor['for'] == presented then
      if successor.sealed then
        alongside()
        return {'replayed', successor.sealed}
      end
      return {'superseded'}
    end
  end
end
if family.previous == presented or redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'reused'}
end
return {'unknown'}`;

/**
 * A whole plain refresh in one script (refresh-rotation.ts RefreshStep), for Redis but Cluster.
 *
 * KEYS: family, sealed successor, rotated mark of the presented token, the grant, the grant's
 *       revocation mark, then n brake counters, then the sealed successors of earlier
 *       rotations to confirm.
 * ARGV: 1-7 as ROTATE_REFRESH_LUA's (presented, successor, sealed, issued_at, now, TTL, window
 *       TTL), then the client id, the earliest fresh `checked_at` (s), the earliest acceptable
 *       `indexed_until` (s), the scope asked for as a JSON array ('' = the grant's), the
 *       audiences asked for as a JSON array, n, each counter's TTL (ms, '0' = none) and max,
 *       then each confirmation's presented hash and grace.
 *
 * Braked: `{'braked', count, …}`, only the counters changed (and the confirmations). Declined:
 * `{'declined', standing, current issued_at, revoked (0/1), grant JSON or ''}`, nothing else
 * written. Rotated: `{'rotated', grant JSON}`, the grant's TTL renewed as the family's (its
 * JSON is not rewritten: a plain refresh changes nothing in it).
 */
export const REFRESH_STEP_LUA = `local n = tonumber(ARGV[13])${confirmations("6 + n", "14 + 2 * n")}
local counts = {'braked'}
local over = false
for i = 1, n do
  local key, ms = KEYS[5 + i], ARGV[12 + 2 * i]
  local count = redis.call('INCR', key)
  if tonumber(ms) > 0 and redis.call('PTTL', key) == -1 then redis.call('PEXPIRE', key, ms) end
  counts[i + 1] = count
  if count > tonumber(ARGV[13 + 2 * i]) then over = true end
end
if over then return counts end
local raw = redis.call('GET', KEYS[1])
if not raw then return {'unknown'} end
local family = cjson.decode(raw)
local presented = ARGV[1]
local standing
if family.current == presented then standing = 'current'
elseif family.previous == presented then standing = 'previous'
elseif redis.call('EXISTS', KEYS[3]) == 1 then standing = 'rotated'
else return {'unknown'} end
local grantText = redis.call('GET', KEYS[4])
local revoked = redis.call('EXISTS', KEYS[5])
local declined = {'declined', standing, tostring(family.issued_at), revoked, grantText or ''}
if standing ~= 'current' or not grantText or revoked == 1 then return declined end
local grant = cjson.decode(grantText)
local function holds(asked, held)
  if type(asked) ~= 'table' or type(held) ~= 'table' then return false end
  local set = {}
  for _, v in ipairs(held) do set[v] = true end
  for _, v in ipairs(asked) do if not set[v] then return false end end
  return true
end
local checked = grant.checked_at or grant.auth_time
if grant.client_id ~= ARGV[8]
  or type(checked) ~= 'number' or checked < tonumber(ARGV[9])
  or type(grant.indexed_until) ~= 'number' or grant.indexed_until < tonumber(ARGV[10])
  or (ARGV[11] ~= '' and not holds(cjson.decode(ARGV[11]), grant.scope))
  or not holds(cjson.decode(ARGV[12]), grant.resources) then
  return declined
end${ROTATE_CURRENT}
if ARGV[6] == '0' then redis.call('PERSIST', KEYS[4]) else redis.call('PEXPIRE', KEYS[4], ARGV[6]) end
return {'rotated', grantText}`;

/**
 * Once the gateway has the "rotated" reply: the sealed successor of `presented` is kept for the
 * grace window from now, no longer. KEYS: sealed successor. ARGV: presented hash, grace (ms).
 */
export const CONFIRM_ROTATION_LUA = `
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['for'] == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/**
 * CONFIRM_ROTATION_LUA for several rotations at once (redis.ts batches the confirmations of
 * what one instance rotated within a few milliseconds into one command). KEYS: the sealed
 * successors. ARGV: the grace (ms), then each key's presented hash in KEYS order.
 */
export const CONFIRM_ROTATIONS_LUA = `
for i, key in ipairs(KEYS) do
  local raw = redis.call('GET', key)
  if raw and cjson.decode(raw)['for'] == ARGV[i + 1] then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 0`;

/** ARGV 1-7, the same in both rotation scripts: the rotation of a current token. */
function rotationArgs(r: Omit<RefreshRotation, "alongside">, now: number): string[] {
  const ttl = String(ttlToMillis(r.ttlSeconds) ?? 0);
  return [
    r.presented,
    r.successor,
    r.sealedSuccessor ?? "",
    String(r.issuedAt),
    String(now),
    ttl,
    // Until confirmed, as long as the family (see the file comment).
    (ttlToMillis(r.graceSeconds) ?? 0) > 0 ? ttl : "",
  ];
}

/** The rotation script's arguments, in order (`alongside`: written by the script, or not at all). */
export function rotateRefreshArgs(
  r: RefreshRotation,
  now: number,
  alongside: RefreshRotation["alongside"],
): string[] {
  return [
    ...rotationArgs(r, now),
    alongside ? JSON.stringify(alongside.value) : "",
    String((alongside && ttlToMillis(alongside.ttlSeconds)) ?? 0),
  ];
}

/** REFRESH_STEP_LUA's arguments, in order, before the confirmations (its keys: redis.ts). */
export function refreshStepArgs(step: RefreshStep, now: number): string[] {
  return [
    ...rotationArgs(step, now),
    step.clientId,
    String(step.checkedSince),
    String(step.indexedUntil),
    step.scope === undefined ? "" : JSON.stringify(step.scope),
    JSON.stringify(step.resources),
    String(step.brakes?.counters.length ?? 0),
    ...(step.brakes?.counters ?? []).flatMap((c) => [String(ttlToMillis(c.ttlSeconds) ?? 0), String(c.max)]),
  ];
}

export function parseRefreshStepReply(reply: unknown): RefreshStepOutcome {
  const [outcome, ...rest] = Array.isArray(reply) ? (reply as unknown[]) : [];
  if (outcome === "unknown") return { outcome };
  if (outcome === "braked") return { outcome, counts: rest.map(Number) };
  if (outcome === "rotated" && typeof rest[0] === "string")
    return { outcome, grant: JSON.parse(rest[0]) as Json };
  if (outcome === "declined") {
    const [standing, issuedAt, revoked, grant] = rest;
    if (
      (standing === "current" || standing === "previous" || standing === "rotated") &&
      typeof issuedAt === "string" &&
      typeof grant === "string"
    ) {
      return {
        outcome,
        standing,
        currentIssuedAt: Number(issuedAt),
        revoked: revoked === 1,
        ...(grant ? { grant: JSON.parse(grant) as Json } : {}),
      };
    }
  }
  throw new Error(`unexpected reply from the refresh script: ${JSON.stringify(reply)}`);
}

export function parseRotateReply(reply: unknown): RotationOutcome {
  const [outcome, sealed] = Array.isArray(reply) ? (reply as unknown[]) : [];
  switch (outcome) {
    case "rotated":
    case "superseded":
    case "reused":
    case "unknown":
      return { outcome };
    case "replayed":
      if (typeof sealed === "string") return { outcome, sealed };
  }
  throw new Error(`unexpected reply from the refresh rotation script: ${JSON.stringify(reply)}`);
}
