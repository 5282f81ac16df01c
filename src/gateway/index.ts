/** The resource side: see plugin.ts. */

export { bearerChallenge } from "./challenge.js";
export { type GatewayDeps, registerGateway } from "./plugin.js";
export { protectedResourceMetadata } from "./prm.js";
export type { UpstreamTarget } from "./proxy.js";
