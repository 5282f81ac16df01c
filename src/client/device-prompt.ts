/**
 * What `login --device` shows the person: the page to open, the code to type there, and, on a
 * terminal, a QR code of the page with the code filled in, for a phone's camera. The page still
 * asks to confirm the code, so the QR code saves typing, not checking (RFC 8628 §3.3.1, §5.4).
 */
import QRCode from "qrcode";
import type { DeviceCodePrompt } from "./device-login.js";

/** "10 minutes", "90 seconds". */
function lifetime(seconds: number): string {
  if (seconds % 60 === 0 && seconds >= 60) return `${seconds / 60} minute${seconds === 60 ? "" : "s"}`;
  return `${seconds} seconds`;
}

/** The text to print on stderr; `qr` adds the QR code (only where a terminal can draw it). */
export async function devicePrompt(prompt: DeviceCodePrompt, options: { qr: boolean }): Promise<string> {
  const lines = [
    "To log in, open this page on any device with a browser:",
    "",
    `  ${prompt.verificationUri}`,
    "",
    "and enter the code:",
    "",
    `  ${prompt.userCode}`,
    "",
  ];
  if (prompt.verificationUriComplete) {
    lines.push("or open this link, which has the code filled in (check it matches):", "");
    lines.push(`  ${prompt.verificationUriComplete}`, "");
  }
  if (options.qr) {
    const target = prompt.verificationUriComplete ?? prompt.verificationUri;
    lines.push((await QRCode.toString(target, { type: "terminal", small: true })).trimEnd(), "");
  }
  lines.push(`Waiting for the sign-in (the code expires in ${lifetime(prompt.expiresIn)})...`, "");
  return `${lines.join("\n")}\n`;
}
