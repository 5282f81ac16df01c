/**
 * Memory of a process and all its descendants, from /proc (Linux): VmRSS from
 * /proc/PID/status and Pss from /proc/PID/smaps_rollup. RSS counts shared pages (the node
 * binary, shared libraries) once per process; PSS splits them among the processes sharing
 * them, so it is what the tree really adds to the machine.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface TreeMemory {
  /** Sum of VmRSS over the tree, bytes. */
  rss: number;
  /** Sum of Pss over the tree, bytes. */
  pss: number;
  /** VmRSS of the root process alone, bytes. */
  parentRss: number;
  /** Processes in the tree, the root included. */
  processes: number;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined; // the process exited between listing and reading
  }
}

/** The parent pid from /proc/PID/stat (the field after the parenthesised command name). */
function parentOf(pid: number): number | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[1]);
}

/** `root` and every live descendant, root first. */
export function treePids(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const ppid = parentOf(pid);
    if (ppid === undefined) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  if (!read(`/proc/${root}/stat`)) return [];
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i] as number) ?? []));
  return out;
}

/** A `Name:   123 kB` line of a /proc file, in bytes (0 when absent). */
function kbField(text: string | undefined, field: string): number {
  const match = text?.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return match ? Number(match[1]) * 1024 : 0;
}

/** RSS and PSS of `root` and its descendants, read now. */
export function treeMemory(root: number): TreeMemory {
  const pids = treePids(root);
  let rss = 0;
  let pss = 0;
  for (const pid of pids) {
    rss += kbField(read(`/proc/${pid}/status`), "VmRSS");
    pss += kbField(read(`/proc/${pid}/smaps_rollup`), "Pss");
  }
  return { rss, pss, parentRss: kbField(read(`/proc/${root}/status`), "VmRSS"), processes: pids.length };
}

/** CPU time (user + system) a process has used so far, in milliseconds (from /proc/PID/stat). */
export function cpuMillis(pid: number): number {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return Number.NaN;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
