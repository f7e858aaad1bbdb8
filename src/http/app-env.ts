import type { OpenAPIHono, RouteConfig, RouteConfigToEnv, RouteHandler } from "@hono/zod-openapi";
import type { Principal } from "../auth/principal";
import type { WorkerConfig } from "../config/worker-config";

/** What every request of the app carries: the bindings, and what its route's middleware found. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** Set by requireScope and requireConfig; a route that reads it declares one of them. */
    config: WorkerConfig;
    /** The caller, set by requireScope only: undefined on an open route. */
    principal?: Principal;
  };
}

export type App = OpenAPIHono<AppEnv>;
/** A route handler's context: the app's variables and those its own middleware set. */
export type RouteContext<R extends RouteConfig> = Parameters<
  RouteHandler<R, AppEnv & RouteConfigToEnv<R>>
>[0];
