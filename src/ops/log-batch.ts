/**
 * Log lines to a file descriptor in batches: each line encoded at once into a buffer, the bytes
 * of a few milliseconds handed to sonic-boom together and written with one asynchronous
 * write(2) while nothing else is being written. Handing sonic-boom each line costs a write call
 * per line on a busy gateway (a write to /dev/null or a pipe ends before the next line comes),
 * and even when it buffers, sonic-boom measures its whole buffer's UTF-8 length on every line.
 *
 * The lines are bytes from the moment they arrive, not a string: a batch kept as one string
 * (`pending += line`) is a rope of thousands of small strings that lives across several young
 * GCs, each of which copies it and the last of which promotes it, and that is then flattened
 * and encoded in one go on the main thread. On the busy /verify that cost more than the line
 * itself (about 1 µs per line to measure and encode the rope, and as much again in GC). A line
 * encoded into a buffer is garbage at once; the buffer is outside V8's heap, and is used again
 * once sonic-boom has written it.
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

/**
 * The size of a batch's buffer: a line that does not fit hands the batch over at once. A busy
 * gateway's 10 ms of access lines (~60,000 lines/s of ~230 bytes) is about half of it.
 */
const CHUNK = 256 * 1024;

/** Written buffers kept for the next batches: the one being filled and the one being written. */
const SPARE_CHUNKS = 2;

/** UTF-8 bytes a string of `length` UTF-16 units can take at most. */
const maxBytes = (length: number) => length * 3;

export class LogBatch {
  /** The batch being filled: `chunk[0, used)`. */
  private chunk: Buffer = Buffer.allocUnsafeSlow(CHUNK);
  private used = 0;
  /** Buffers handed to sonic-boom (it holds them until written), and written ones to fill again. */
  private handed: Buffer[] = [];
  private readonly spare: Buffer[] = [];
  /** Bytes handed to sonic-boom, and bytes it says its writes took: equal, everything handed is written. */
  private bytesHanded = 0;
  private bytesWritten = 0;
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
    this.out = pino.destination({
      dest,
      sync: false,
      contentMode: "buffer",
      minLength: MAX_WRITE - 1,
      maxWrite: MAX_WRITE,
    });
    const idle = () => {
      this.writing = false;
      this.recycle();
      if (this.more) this.startWrite();
      else this.callFlushed();
    };
    this.out.on("ready", idle);
    this.out.on("drain", idle);
    this.out.on("write", (n: number) => {
      this.bytesWritten += n;
    });
    process.once("exit", () => this.flushSync());
  }

  write(line: string): void {
    if (maxBytes(line.length) > this.chunk.length - this.used) this.makeRoom(line);
    else this.used += this.chunk.write(line, this.used);
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
    if (this.takePending()) this.writeHanded();
  };

  /** Writes what sonic-boom holds: now, or once the write under way ends. */
  private writeHanded(): void {
    if (this.writing) this.more = true;
    else this.startWrite();
  }

  /**
   * A line that does not fit in what is left of the batch's buffer: the batch so far goes to
   * sonic-boom (written now, or after the write under way), and the line starts the next one;
   * a line longer than any buffer is handed over on its own.
   */
  private makeRoom(line: string): void {
    this.handOver();
    if (maxBytes(line.length) <= this.chunk.length) {
      this.used = this.chunk.write(line);
      return;
    }
    this.give(Buffer.from(line));
    this.writeHanded();
  }

  /** Moves the batch into sonic-boom's buffer (which never starts a write by itself); false if empty. */
  private takePending(): boolean {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.used === 0 || this.out.destroyed) return false;
    this.give(this.chunk.subarray(0, this.used));
    this.handed.push(this.chunk);
    this.chunk = this.spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
    this.used = 0;
    return true;
  }

  /** `bytes` to sonic-boom, which keeps them until they are written. */
  private give(bytes: Buffer): void {
    this.bytesHanded += bytes.length;
    this.out.write(bytes as unknown as string);
  }

  /**
   * Once sonic-boom has written every byte handed to it, the buffers they were in are free.
   * (sonic-boom says `drain` also with bytes still queued behind the write that ended; and a
   * synchronous flush does not count its bytes, so after one no buffer is used again: correct,
   * only without the reuse.)
   */
  private recycle(): void {
    if (this.bytesWritten !== this.bytesHanded) return;
    for (const chunk of this.handed) if (this.spare.length < SPARE_CHUNKS) this.spare.push(chunk);
    this.handed = [];
  }

  private startWrite(): void {
    this.more = false;
    this.writing = true;
    this.out.flush();
  }
}
