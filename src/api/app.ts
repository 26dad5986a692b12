import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Duplex } from 'node:stream';
import type { Services } from '../app/services.js';
import { ApiError, dependencyUnavailable, isDependencyUnavailable, type ApiErrorCode } from './errors.js';
import { apiKeyGuard } from './api-key.js';
import { observeHttp } from '../metrics/http.js';
import { registerOpenApi } from './openapi.js';
import { formatValidationErrors } from './validation-errors.js';
import { metricsRoutes } from './routes/metrics.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { encodeRoutes } from './routes/encode.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { outputFileRoutes } from './routes/output-files.js';
import { taskRoutes } from './routes/tasks.js';
import { uploadRoutes } from './routes/uploads.js';

export interface AppOptions {
  logger?: FastifyServerOptions['loggerInstance'];
}

/** What a process without the API (a `worker`) serves on METRICS_PORT: /healthz, /readyz and /metrics. */
export async function buildProbeApp(services: Services, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: options.logger ?? services.logger });
  app.addHook('onRoute', (route) => {
    route.logLevel = 'warn';
  });
  await app.register(healthRoutes, { services });
  await app.register(metricsRoutes, { metrics: services.metrics });
  return app;
}

/** The HTTP API as a Fastify instance: routes, validation, the API key and one error handler. */
export async function buildApp(services: Services, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger ?? services.logger,
    bodyLimit: services.config.limits.bodyLimitBytes,
    clientErrorHandler: answerUnreadableRequest,
    schemaErrorFormatter: formatValidationErrors,
    ajv: {
      customOptions: {
        // Unknown fields are rejected (not silently dropped) and types are never coerced in bodies.
        removeAdditional: false,
        coerceTypes: false,
        allErrors: false,
      },
    },
  });

  // Bodies are JSON (and multipart on /uploads): with Fastify's text/plain parser, a string body `fetch` sent
  // as text/plain was refused as "body must be object", when what is wrong is the Content-Type.
  app.removeContentTypeParser('text/plain');
  // Reads (status polls, health checks, the page) are logged only when they go wrong; changes always are.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!route.logLevel && methods.every((m) => m === 'GET' || m === 'HEAD')) route.logLevel = 'warn';
  });
  // First: the OpenAPI document describes every route registered after it, whatever plugin adds it.
  await registerOpenApi(app, services);
  observeHttp(app, services.metrics);

  app.setErrorHandler(
    (err: Error & { statusCode?: number; validation?: unknown; code?: string }, req, reply) => {
      const answer = (apiError: ApiError) =>
        reply
          .code(apiError.statusCode)
          .headers(apiError.headers)
          .send({ error: apiError.code, message: apiError.message });
      if (err instanceof ApiError) return answer(err);
      if (err.validation) {
        return reply.code(400).send({ error: 'bad_request', message: err.message });
      }
      const status = err.statusCode ?? 500;
      if (status < 500) {
        const code = clientErrorCodes[status] ?? 'bad_request';
        const message =
          err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
            ? `${err.message} ${mediaType(req.headers['content-type'])}: send the body as application/json ` +
              '(multipart/form-data to /uploads)'
            : err.message;
        return reply.code(status).send({ error: code, message });
      }
      // The client went away (an upload it aborted): its socket's error is no outage of ours.
      // (`req.raw.destroyed` alone says nothing: a request whose body was read is destroyed too.)
      if (req.raw.aborted || req.raw.socket?.destroyed) {
        req.log.debug({ err: err.message }, 'request aborted by the client');
        return reply.code(400).send({ error: 'bad_request', message: 'the request was aborted' });
      }
      if (isDependencyUnavailable(err)) {
        req.log.warn({ err: err.message }, 'request failed: a dependency is unavailable');
        return answer(dependencyUnavailable());
      }
      req.log.error({ err }, 'request failed');
      return reply.code(500).send({ error: 'internal', message: 'internal server error' });
    },
  );
  app.setNotFoundHandler((req, reply) => {
    void reply
      .code(404)
      .send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  await app.register(healthRoutes, { services });
  await app.register(metricsRoutes, { metrics: services.metrics });
  await app.register(async (protectedApp) => {
    if (services.config.apiKey) protectedApp.addHook('onRequest', apiKeyGuard(services.config.apiKey));
    await protectedApp.register(encodeRoutes, { services });
    await protectedApp.register(taskRoutes, { services });
    await protectedApp.register(uploadRoutes, { services });
    await protectedApp.register(eventRoutes, { services });
    await protectedApp.register(outputFileRoutes, { services });
  });
  await app.register(dashboardRoutes);
  return app;
}

/** A request's media type as a message may quote it: without parameters, and short. */
function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().slice(0, 80) || '(none)';
}

/** The error code of a 4xx that Fastify or a plugin raised (not an ApiError), by status. */
const clientErrorCodes: Partial<Record<number, ApiErrorCode>> = {
  403: 'forbidden',
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/**
 * A request Node's HTTP parser could not read (headers over its limit, malformed syntax): answered on the
 * socket, before any route, in the API's error shape.
 */
function answerUnreadableRequest(err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable) return void socket.destroy();
  const [status, reason, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'headers_too_large', 'the request headers are too large']
      : [400, 'Bad Request', 'bad_request', 'the request could not be read'];
  const body = JSON.stringify({ error: code, message });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
