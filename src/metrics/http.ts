import type { FastifyInstance } from 'fastify';
import type { ServiceMetrics } from './metrics.js';

/** Times every HTTP request by route pattern (never the raw URL: ids would make endless label values). */
export function observeHttp(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.addHook('onResponse', async (req, reply) => {
    const status = reply.statusCode;
    metrics.httpSeconds.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status_code: String(status) },
      reply.elapsedTime / 1000,
    );
    if (status >= 400) metrics.errors.inc({ source: 'api', kind: String(status) });
  });
}
