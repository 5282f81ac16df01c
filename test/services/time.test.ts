import { Client as ClientV2 } from "@modelcontextprotocol/client";
import { StdioClientTransport as StdioTransportV2 } from "@modelcontextprotocol/client/stdio";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nativeServiceCommand } from "../../src/services/catalog.js";
import { formatHourDifference, instantOfWallTime, zonedTime } from "../../src/services/timezones.js";

describe("time zone arithmetic", () => {
  it("gives wall time, offset, weekday and DST for fixed instants", () => {
    expect(zonedTime(Date.UTC(2025, 6, 1, 12), "Europe/Berlin")).toEqual({
      timezone: "Europe/Berlin",
      datetime: "2025-07-01T14:00:00+02:00",
      day_of_week: "Tuesday",
      is_dst: true,
    });
    expect(zonedTime(Date.UTC(2025, 0, 15, 23, 30), "Europe/Berlin")).toMatchObject({
      datetime: "2025-01-16T00:30:00+01:00",
      day_of_week: "Thursday",
      is_dst: false,
    });
    // Southern hemisphere: daylight saving in January.
    expect(zonedTime(Date.UTC(2025, 0, 15), "Australia/Sydney")).toMatchObject({
      datetime: "2025-01-15T11:00:00+11:00",
      is_dst: true,
    });
    expect(zonedTime(Date.UTC(2025, 0, 15), "Asia/Kathmandu").datetime).toBe("2025-01-15T05:45:00+05:45");
    expect(zonedTime(Date.UTC(2025, 0, 15), "America/St_Johns").datetime).toBe("2025-01-14T20:30:00-03:30");
  });

  it("finds the instant of a wall time on either side of a DST change", () => {
    const summer = instantOfWallTime({ year: 2025, month: 7, day: 1 }, 9, 0, "America/New_York");
    expect(new Date(summer).toISOString()).toBe("2025-07-01T13:00:00.000Z");
    const winter = instantOfWallTime({ year: 2025, month: 1, day: 1 }, 9, 0, "America/New_York");
    expect(new Date(winter).toISOString()).toBe("2025-01-01T14:00:00.000Z");
    // The day after the spring change, close to midnight.
    const after = instantOfWallTime({ year: 2025, month: 3, day: 10 }, 0, 30, "America/New_York");
    expect(new Date(after).toISOString()).toBe("2025-03-10T04:30:00.000Z");
  });

  it("writes hour differences like the reference server", () => {
    expect(formatHourDifference(330)).toBe("+5.5h");
    expect(formatHourDifference(345)).toBe("+5.75h");
    expect(formatHourDifference(-300)).toBe("-5.0h");
    expect(formatHourDifference(0)).toBe("+0.0h");
  });
});

/** What the tests below call, the same in both SDKs. */
type TimeClient = Pick<Client, "listTools" | "callTool" | "close">;

const env = { PATH: process.env.PATH ?? "" };
/** The server from its stdio entry, as a 2025 session (SDK v1) and stateless (SDK v2, pinned). */
const CLIENTS: Record<string, () => Promise<TimeClient>> = {
  "SDK v1 client, 2025 session": async () => {
    const client = new Client({ name: "time-test", version: "1.0.0" });
    await client.connect(new StdioClientTransport({ ...nativeServiceCommand("time"), env }));
    return client;
  },
  "SDK v2 client pinned to 2026-07-28": async () => {
    const client = new ClientV2(
      { name: "time-test", version: "1.0.0" },
      { versionNegotiation: { mode: { pin: "2026-07-28" } } },
    );
    await client.connect(new StdioTransportV2({ ...nativeServiceCommand("time"), env }));
    expect(client.getProtocolEra()).toBe("modern");
    return client as unknown as TimeClient;
  },
};

describe.each(Object.entries(CLIENTS))("time MCP server over stdio, %s", (_label, connect) => {
  let client: TimeClient;

  beforeAll(async () => {
    client = await connect();
  });

  afterAll(async () => {
    await client?.close();
  });

  it("lists its two tools", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["convert_time", "get_current_time"]);
  });

  it("get_current_time returns the current time in the zone", async () => {
    const before = Date.now();
    const result = await client.callTool({ name: "get_current_time", arguments: { timezone: "UTC" } });
    const value = result.structuredContent as { datetime: string; timezone: string; is_dst: boolean };
    expect(value.timezone).toBe("UTC");
    expect(value.is_dst).toBe(false);
    expect(value.datetime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    expect(Math.abs(Date.parse(value.datetime) - before)).toBeLessThan(5_000);
    const text = (result.content as Array<{ text: string }>)[0]?.text ?? "";
    expect(JSON.parse(text)).toEqual(value);
  });

  it("convert_time converts between zones with the difference", async () => {
    const result = await client.callTool({
      name: "convert_time",
      arguments: { source_timezone: "UTC", time: "12:00", target_timezone: "Asia/Kolkata" },
    });
    expect(result.isError).toBeFalsy();
    const value = result.structuredContent as {
      source: { datetime: string };
      target: { datetime: string; timezone: string };
      time_difference: string;
    };
    expect(value.source.datetime).toMatch(/T12:00:00\+00:00$/);
    expect(value.target.datetime).toMatch(/T17:30:00\+05:30$/);
    expect(value.target.timezone).toBe("Asia/Kolkata");
    expect(value.time_difference).toBe("+5.5h");
  });

  it("answers a bad zone or time with a tool error", async () => {
    const badZone = await client.callTool({
      name: "get_current_time",
      arguments: { timezone: "Mars/Olympus_Mons" },
    });
    expect(badZone.isError).toBe(true);
    expect(JSON.stringify(badZone.content)).toContain("Invalid timezone: 'Mars/Olympus_Mons'");
    const badTarget = await client.callTool({
      name: "convert_time",
      arguments: { source_timezone: "UTC", time: "10:00", target_timezone: "Nowhere/Land" },
    });
    expect(badTarget.isError).toBe(true);
    expect(JSON.stringify(badTarget.content)).toContain("Invalid timezone: 'Nowhere/Land'");
    const badTime = await client.callTool({
      name: "convert_time",
      arguments: { source_timezone: "UTC", time: "25:61", target_timezone: "UTC" },
    });
    expect(badTime.isError).toBe(true);
    expect(JSON.stringify(badTime.content)).toContain("Invalid time format");
  });
});
