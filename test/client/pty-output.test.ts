/**
 * The pty helper (test/support/pty.ts) must hand back what the terminal showed, character for
 * character, however the bytes arrive: the device-login test reads a QR code (▀▄█, three bytes
 * each) off it, and a busy machine splits a 3 KB prompt across reads (the kernel's tty layer
 * writes in 2 KB pieces).
 */
import { describe, expect, it } from "vitest";
import { SCRIPT, spawnInPty } from "../support/pty.js";

describe.skipIf(!SCRIPT)("spawnInPty", () => {
  it("keeps a multi-byte character whole when its bytes arrive in two reads", async () => {
    // Two writes 200 ms apart, the first ending inside "▀" (E2 96 80): two reads for certain.
    const program = `
      const bytes = Buffer.from("▀▄█".repeat(10) + "\\n");
      process.stdout.write(bytes.subarray(0, 4));
      setTimeout(() => process.stdout.write(bytes.subarray(4)), 200);
    `;
    const term = spawnInPty([process.execPath, "-e", program], { cwd: process.cwd(), env: process.env });
    // "close" comes after both pipes have ended: everything the terminal showed is in.
    await new Promise((resolve) => term.child.once("close", resolve));
    expect(term.output().split("\n")[0]).toBe("▀▄█".repeat(10));
  });
});
