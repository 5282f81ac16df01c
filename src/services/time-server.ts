/**
 * The `time` MCP server: current time in a zone and conversion between zones, with the tools,
 * arguments and result shapes of the Python reference server (mcp-server-time). Built on SDK v2,
 * so one definition serves 2025 sessions and 2026-07-28 stateless requests alike.
 */
import { type CallToolResult, McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import {
  assertTimezone,
  formatHourDifference,
  InvalidTimezoneError,
  instantOfWallTime,
  offsetMinutes,
  todayIn,
  zonedTime,
} from "./timezones.js";

const zonedTimeSchema = z.object({
  timezone: z.string(),
  datetime: z.string(),
  day_of_week: z.string(),
  is_dst: z.boolean(),
});

function result(value: Record<string, unknown>): CallToolResult {
  return { content: [{ type: "text", text: JSON.stringify(value, null, 2) }], structuredContent: value };
}

function toolError(err: unknown): CallToolResult {
  const message =
    err instanceof InvalidTimezoneError ? err.message : `Error processing time query: ${String(err)}`;
  return { content: [{ type: "text", text: message }], isError: true };
}

/** Build the server. `localTimezone` is only named in the tool descriptions, as a hint for models. */
export function createTimeServer(
  localTimezone = Intl.DateTimeFormat().resolvedOptions().timeZone,
  now: () => number = Date.now,
): McpServer {
  const server = new McpServer({ name: "mcp-time", version: "1.0.0" });
  const zoneHint = `IANA timezone name (e.g., 'America/New_York', 'Europe/London'). Use '${localTimezone}' as local timezone if no timezone provided by the user.`;

  server.registerTool(
    "get_current_time",
    {
      title: "Current time",
      description: "Get current time in a specific timezone",
      inputSchema: z.object({ timezone: z.string().describe(zoneHint) }),
      outputSchema: zonedTimeSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ timezone }) => {
      try {
        return result({ ...zonedTime(now(), timezone) });
      } catch (err) {
        return toolError(err);
      }
    },
  );

  server.registerTool(
    "convert_time",
    {
      title: "Convert time",
      description: "Convert time between timezones",
      inputSchema: z.object({
        source_timezone: z.string().describe(`Source ${zoneHint}`),
        time: z.string().describe("Time to convert in 24-hour format (HH:MM)"),
        target_timezone: z.string().describe(`Target ${zoneHint}`),
      }),
      outputSchema: z.object({
        source: zonedTimeSchema,
        target: zonedTimeSchema,
        time_difference: z.string(),
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ source_timezone, time, target_timezone }) => {
      try {
        assertTimezone(source_timezone);
        assertTimezone(target_timezone);
        const match = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(time.trim());
        if (!match) {
          return {
            content: [{ type: "text", text: "Invalid time format. Expected HH:MM [24-hour format]" }],
            isError: true,
          };
        }
        // The given time is taken on today's date in the source zone, like the reference server.
        const instant = instantOfWallTime(
          todayIn(source_timezone, now()),
          Number(match[1]),
          Number(match[2]),
          source_timezone,
        );
        const difference = offsetMinutes(instant, target_timezone) - offsetMinutes(instant, source_timezone);
        return result({
          source: zonedTime(instant, source_timezone),
          target: zonedTime(instant, target_timezone),
          time_difference: formatHourDifference(difference),
        });
      } catch (err) {
        return toolError(err);
      }
    },
  );
  return server;
}
