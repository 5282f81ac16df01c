/**
 * Two instances behind Caddy `lb_policy round_robin` (deploy/caddy/Caddyfile.cluster), one
 * Redis: every flow across instances (test/cluster/scale-out-suite.ts).
 */
import { scaleOutSuite, VARIANTS } from "./scale-out-suite.js";

scaleOutSuite(VARIANTS.caddy);
