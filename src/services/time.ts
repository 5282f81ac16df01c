/**
 * Entry point of the native `time` MCP server on stdio: `node dist/services/time.js
 * [--local-timezone ZONE]` (or LOCAL_TIMEZONE in the environment).
 */
import { parseArgs } from "node:util";
import { serveBothEras } from "./stdio.js";
import { createTimeServer } from "./time-server.js";

const { values } = parseArgs({ options: { "local-timezone": { type: "string" } }, strict: false });
const local = (values["local-timezone"] as string | undefined) ?? process.env.LOCAL_TIMEZONE;
serveBothEras(() => createTimeServer(local || undefined));
