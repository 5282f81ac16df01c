/**
 * Brute-force brake on the password login: failed attempts are counted in the store (so every
 * gateway instance sees them) per address and per address + user name, and refused for a while
 * past a limit. Successful logins are not counted.
 *
 *   login_failures:ip:{ip}              failures from one address       TTL WINDOW
 *   login_failures:user:{ip}:{name}     failures for one name from it   TTL WINDOW
 */
import type { Store } from "../store/store.js";

const NS = "login_failures";
/** How long failures are remembered. */
const WINDOW_SECONDS = 15 * 60;
const MAX_PER_ADDRESS = 50;
const MAX_PER_ADDRESS_AND_USER = 10;

export class LoginThrottle {
  constructor(private readonly store: Store) {}

  private keys(ip: string, username: string): [string, string] {
    return [`ip:${ip}`, `user:${ip}:${username.trim().toLowerCase().slice(0, 64)}`];
  }

  async blocked(ip: string, username: string): Promise<boolean> {
    const [byIp, byUser] = await this.store.getMany<number>(NS, this.keys(ip, username));
    return (byIp ?? 0) >= MAX_PER_ADDRESS || (byUser ?? 0) >= MAX_PER_ADDRESS_AND_USER;
  }

  async failed(ip: string, username: string): Promise<void> {
    for (const key of this.keys(ip, username)) await this.store.incr(NS, key, WINDOW_SECONDS);
  }
}
