/** The services that ship in the box, as the lowest config layer of `serve`. */
export async function builtinServiceDefaults(dataDir: string): Promise<Record<string, unknown>> {
  const { builtinServices } = await import("../services/catalog.js");
  return { services: builtinServices(dataDir) };
}
