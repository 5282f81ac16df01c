/**
 * Three instances behind nginx round-robin (deploy/nginx/gateway-cluster.conf), one Redis:
 * every flow across instances (test/cluster/scale-out-suite.ts).
 */
import { scaleOutSuite, VARIANTS } from "./scale-out-suite.js";

scaleOutSuite(VARIANTS.nginx);
