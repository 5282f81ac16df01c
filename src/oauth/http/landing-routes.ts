/**
 * `GET /`: the landing page (web/landing.ts). Signed in, it lists the services this person may
 * use: the provider's allowlist admits them and each service's own policy does (the same
 * evaluatePolicy the resource side applies to tokens). Signed out, it lists none.
 */
import type { FastifyInstance } from "fastify";
import { publicPath } from "../../config/public-path.js";
import { evaluatePolicy } from "../../idp/policy.js";
import { COPY_PAGE_HEADERS } from "../../web/copy-script.js";
import { type LandingService, landingPage } from "../../web/landing.js";
import type { AuthorizationServer } from "../server.js";
import { PERSON } from "./error-handler.js";
import { personSessions } from "./person-session.js";

export async function registerLandingRoutes(app: FastifyInstance, as: AuthorizationServer): Promise<void> {
  const sessions = personSessions(as);
  const { config, resources, idp } = as.parts;
  const base = publicPath(as.issuer);
  const all: LandingService[] = [...resources.services.values()].map((s) => ({
    name: s.service,
    url: s.pathUrl,
  }));

  app.get<{ Querystring: { service?: string } }>("/", PERSON, async (request, reply) => {
    const signedIn = await sessions.current(request);
    const user = signedIn?.session.user;
    const wanted = request.query.service;
    // Signed out, nobody is shown the list: a service's snippets only when its name is asked
    // for (the endpoint page's link), which tells no more than its metadata document already does.
    const services = !user
      ? []
      : idp.checkAccess(user).allowed
        ? all.filter((s) => {
            const service = config.services[s.name];
            return service !== undefined && evaluatePolicy(service, user).allowed;
          })
        : [];
    const selected = user
      ? (services.find((s) => s.name === wanted) ?? services[0])
      : all.find((s) => s.name === wanted);
    return reply
      .code(200)
      .headers(COPY_PAGE_HEADERS)
      .send(landingPage({ base, user: user?.login, services, selected }));
  });
}
