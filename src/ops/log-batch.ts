/**
 * Log lines to a file descriptor in batches: the lines of a few milliseconds joined and handed
 * to sonic-boom as one string, written with one asynchronous write(2) while nothing else is
 * being written. Handing sonic-boom each line costs a write call per line on a busy gateway
 * (a write to /dev/null or a pipe ends before the next line comes), and even when it buffers,
 * sonic-boom measures its whole buffer's UTF-8 length on every line: per line, more CPU than
 * the line itself (bench/RESULTS.md). Here a line costs a string append.
 *
 * Nothing is lost at exit: on `exit` (process.exit, the end of a signal's handler, an uncaught
 * exception) the batch joins sonic-boom's buffer, which is written synchronously; a fatal line
 * is written synchronously at once (pino calls flushSync). A natural end of the process waits
 * for the batch's timer, which is not unref'd.
 */
import pino from "pino";

/** `destroyed` is sonic-boom's own flag (set once it is closed), missing from its types. */
type SonicBoom = ReturnType<typeof pino.destination> & { readonly destroyed?: boolean };

/** sonic-boom writes by itself only past this much (never, in practice): this class decides when. */
const MAX_WRITE = 1 << 20;

export class LogBatch {
  private pending = "";
  private timer: NodeJS.Timeout | undefined;
  /**
   * A write of sonic-boom's is under way (sonic-boom says `drain` when it ends), or the
   * destination is not open yet (it says `ready`).
   */
  private writing = true;
  /** Lines were handed over while a write was under way: write them when it ends. */
  private more = false;
  /** flush(cb) callbacks, called once nothing is being written. */
  private flushed: Array<() => void> = [];
  private readonly out: SonicBoom;

  /** `dest`: a file descriptor or a path; `delayMs`: how long a line may wait for others. */
  constructor(
    dest: number | string,
    private readonly delayMs: number,
  ) {
    this.out = pino.destination({ dest, sync: false, minLength: MAX_WRITE - 1, maxWrite: MAX_WRITE });
    const idle = () => {
      this.writing = false;
      if (this.more) this.startWrite();
      else this.callFlushed();
    };
    this.out.on("ready", idle);
    this.out.on("drain", idle);
    process.once("exit", () => this.flushSync());
  }

  write(line: string): void {
    this.pending += line;
    if (this.timer === undefined) this.timer = setTimeout(this.handOver, this.delayMs);
  }

  /** What pino calls before a fatal line's process exit, and on `exit`: everything, now. */
  flushSync(): void {
    this.takePending();
    if (!this.out.destroyed) this.out.flushSync();
  }

  /** pino's logger.flush(cb): the batch written now, asynchronously; `cb` once it is. */
  flush(cb?: (err?: Error) => void): void {
    this.handOver();
    if (!cb) return;
    // Once the destination is open and nothing is being written (not on sonic-boom's `drain`
    // alone: a destination still opening says `ready`, not `drain`).
    this.flushed.push(cb);
    if (!this.writing) this.callFlushed();
  }

  private callFlushed(): void {
    const callbacks = this.flushed;
    this.flushed = [];
    for (const cb of callbacks) cb();
  }

  private readonly handOver = (): void => {
    if (!this.takePending()) return;
    if (this.writing) this.more = true;
    else this.startWrite();
  };

  /** Moves the batch into sonic-boom's buffer (which never starts a write by itself); false if empty. */
  private takePending(): boolean {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending === "" || this.out.destroyed) return false;
    this.out.write(this.pending);
    this.pending = "";
    return true;
  }

  private startWrite(): void {
    this.more = false;
    this.writing = true;
    this.out.flush();
  }
}
