import { createRequire } from 'node:module';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { Services } from '../app/services.js';
import { failureCodes } from '../domain/failures.js';
import { apiErrors } from '../domain/schemas/error-body.js';

export interface RouteSummary {
  method: string;
  url: string;
  /** Routes with `schema.hide` (the documentation's own pages, static files) stay out of the document. */
  hidden: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered after the OpenAPI plugin, as an onRoute hook saw it (HEAD routes left out). */
    routeList: RouteSummary[];
  }
}

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

const description = `Turns videos into adaptive streams (MPEG-DASH and HLS) with FFmpeg and Shaka Packager.

Submit a conversion with \`POST /encode\`, follow it with \`GET /status/{task_id}\` (or a callback), and find
the package in the output storage. \`POST /plan\` shows what a conversion would do without running it.

When the service has an API key (API_KEY), every route but /healthz, /readyz, /metrics, /docs and
/openapi.json needs it in the \`X-API-Key\` header.

### Errors
Every error answer is \`{"error": "<code>", "message": "<what is wrong>"}\`; messages of 5xx errors are
generic. Codes and their HTTP status:

${Object.entries(apiErrors)
  .map(([code, status]) => `- \`${code}\`: ${status}`)
  .join('\n')}

### Why a task failed
A failed task's status document has \`error_code\` (and \`error\`, in words). Permanent failures are not
retried; the others are, up to TASK_MAX_ATTEMPTS runs:

${Object.entries(failureCodes)
  .map(([code, { permanent }]) => `- \`${code}\`${permanent ? '' : ' (retried)'}`)
  .join('\n')}`;

/**
 * The OpenAPI document (/openapi.json, page at /docs) from the route schemas. Await it before registering any
 * route: @fastify/swagger's onRoute hook only sees the routes registered after it.
 */
export async function registerOpenApi(app: FastifyInstance, services: Services): Promise<void> {
  const routeList: RouteSummary[] = [];
  app.decorate('routeList', routeList);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      routeList.push({ method, url: route.url, hidden: !!(route.schema as { hide?: boolean })?.hide });
    }
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'dash-video-converter', version, description },
      tags: [
        { name: 'tasks', description: 'Submit, plan, follow, list and cancel conversions.' },
        { name: 'operations', description: 'Health, readiness and metrics.' },
      ],
      components: {
        securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } },
      },
      ...(services.config.apiKey ? { security: [{ apiKey: [] }] } : {}),
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
