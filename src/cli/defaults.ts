/**
 * The services that ship in the box, as the lowest config layer. The catalog is loaded only
 * when asked for: commands that leave the built-ins out should not pay for resolving them.
 */
export async function builtinServicesLayer(options: {
  /** Create what they need on disk (workspace, browser config): for serve and doctor, not for reading. */
  prepare: boolean;
}): Promise<(dataDir: string) => Record<string, unknown>> {
  const { builtinServices } = await import("../services/catalog.js");
  return (dataDir) => ({ services: builtinServices(dataDir, options) });
}
