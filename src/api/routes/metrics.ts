import type { FastifyPluginAsync } from 'fastify';
import type { ServiceMetrics } from '../../metrics/metrics.js';

export const metricsRoutes: FastifyPluginAsync<{ metrics: ServiceMetrics }> = async (app, { metrics }) => {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        // Public even when API_KEY is set: probes and scrapers carry no key.
        security: [],
        description:
          'Metrics of this service instance in the Prometheus text format: tasks submitted and finished by ' +
          'status and failure code, queue depth, running tasks, stage durations and encode speed ' +
          '(histograms), callback deliveries, errors by source and kind, HTTP request durations, and the ' +
          'default Node.js process metrics. Not behind the API key, like /healthz and /readyz.',
        produces: ['text/plain'],
        response: {
          200: {
            description: 'Prometheus text exposition format 0.0.4.',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
    async (_req, reply) => {
      const { contentType, body } = await metrics.render();
      return reply.type(contentType).send(body);
    },
  );
};
