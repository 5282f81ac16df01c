/**
 * The authorization server as one encapsulated fastify subtree, symmetric with the resource
 * side's (gateway/plugin.ts): its own body parsing (forms, JSON), its own error converter, CORS
 * for the machine endpoints, then the machine endpoints and the pages a person goes through
 * (the sign-in flow, the landing page, their account and sign-out).
 */
import formbody from "@fastify/formbody";
import type { FastifyInstance } from "fastify";
import type { AuthorizationServer } from "../server.js";
import { registerAccountRoutes } from "./account-routes.js";
import { registerMachineCors } from "./cors.js";
import { registerDeviceRoutes } from "./device-routes.js";
import { metadataPaths, registerEndpoints } from "./endpoints.js";
import { oauthErrorHandler } from "./error-handler.js";
import { sameOriginForms } from "./form-origin.js";
import { registerInteractionRoutes } from "./interaction-routes.js";
import { registerLandingRoutes } from "./landing-routes.js";

export async function registerAuthorizationServer(
  app: FastifyInstance,
  as: AuthorizationServer,
): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(formbody);
    scope.setErrorHandler(oauthErrorHandler(as.audit));
    scope.addHook("onRequest", sameOriginForms(as.issuer));
    registerMachineCors(scope, metadataPaths(as.issuer));
    await registerEndpoints(scope, as);
    await registerInteractionRoutes(scope, as);
    await registerDeviceRoutes(scope, as);
    // The pages a signed-in person uses beside the authorization flow.
    await registerLandingRoutes(scope, as);
    await registerAccountRoutes(scope, as);
  });
}
