/**
 * Where a bridge's sessions live when several gateway instances serve one service: each session
 * stays with the instance whose bridge spawned (or joined) its child. The bridge tells the
 * placement about the sessions it opens and ends, and hands it the requests naming a session it
 * does not hold, for the instance that does (src/cluster/ implements it; a lone bridge has none).
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface SessionPlacement {
  /**
   * Record that this instance holds a new session, before its id reaches the client (so the
   * client's next request, wherever it lands, finds it). A rejection refuses the session.
   */
  opened(sessionId: string): Promise<void>;
  /** The session ended here (deleted, idle, its child gone, the bridge closing). */
  ended(sessionId: string): void;
  /**
   * A request naming a session this bridge does not hold. Answers it and resolves true when the
   * session is elsewhere (the request is relayed there, or refused if that cannot be decided);
   * resolves false, touching nothing, when no live instance holds it (the bridge answers 404).
   * `body` is the POST body already read, if any.
   */
  relay(sessionId: string, req: IncomingMessage, res: ServerResponse, body?: Buffer): Promise<boolean>;
}
