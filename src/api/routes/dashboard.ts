import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

/** Where `npm run build` puts the dashboard (web/build.ts): dist/web at the package root. */
export const defaultDashboardDir = fileURLToPath(new URL('../../../dist/web/', import.meta.url));

/**
 * The dashboard's static files at `/`, served without the API key since they hold no data; the page sends the
 * key in X-API-Key, never a cookie or URL (docs/design-notes.md, "Dashboard and API key").
 */
export const dashboardRoutes: FastifyPluginAsync<{ dir?: string }> = async (app, options) => {
  const dir = options.dir ?? defaultDashboardDir;
  const securityHeaders = {
    'content-security-policy': [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      // Media and manifests may come from a public bucket or CDN (PUBLIC_BASE_URL), uploads may go
      // straight to a presigned S3 URL; blob: is how the player feeds Media Source Extensions.
      'img-src * blob: data:',
      'media-src * blob:',
      'connect-src *',
      "object-src 'none'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
      "form-action 'self'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  if (!existsSync(dir)) {
    app.get('/', async (_req, reply) =>
      reply
        .code(503)
        .headers(securityHeaders)
        .type('text/html; charset=utf-8')
        .send(
          '<!doctype html><title>dash-video-converter</title><p>The dashboard is not built. Run <code>npm run build</code> and restart the service. The API works without it.</p>',
        ),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    decorateReply: false,
    index: ['index.html'],
    list: false,
    dotfiles: 'ignore',
    // app.js.br / .gz and the others, written by the build: the bundle is mostly Shaka Player (≈720 KB), a
    // quarter of that compressed, at no CPU cost per request.
    preCompressed: true,
    // File names carry no content hash: browsers revalidate each load (ETag makes that cheap).
    cacheControl: false,
    setHeaders: (reply) => {
      reply.headers(securityHeaders);
      reply.header('cache-control', 'no-cache');
    },
  });
};
