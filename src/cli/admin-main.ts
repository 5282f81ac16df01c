/**
 * `mcp-gateway admin …` alone: the entry of the admin bundle (scripts/bundle-admin.mjs, built by
 * `npm run build` into dist/admin/). An admin command is a short process whose start-up is most
 * of what the operator waits for, and most of that start-up is Node loading modules one by one
 * (zod, yaml, commander and ours, about 250 files): bundled, they are a handful of files.
 */
import { registerAdminCommands } from "./admin.js";
import { newProgram, runProgram } from "./program.js";

const program = newProgram();
registerAdminCommands(program);
runProgram(program);
