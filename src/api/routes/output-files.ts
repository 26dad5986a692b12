import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../app/services.js';
import { contentTypeFor, isImmutableMedia } from '../../storage/content-type.js';
import { isPartialFile } from '../../storage/keys.js';

/**
 * `GET /output/<key>`: the packages in a local output directory over HTTP, so the dashboard's player can fetch
 * the MPD, the HLS playlists and the segments (same origin, no CORS, behind API_KEY when set: players elsewhere
 * get OUTPUT_DIR from a web server or CDN). Only for local output storage: S3 output is served by the bucket or
 * a CDN in front of it (PUBLIC_BASE_URL).
 */
export const outputFileRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const output = services.config.output;
  if (output.kind !== 'local') return;
  const { segments, manifests } = services.config.cacheControl;
  await app.register(fastifyStatic, {
    root: output.root,
    prefix: '/output/',
    decorateReply: false,
    index: false,
    list: false,
    dotfiles: 'ignore',
    cacheControl: false,
    // Files still being written (`<name>.<hex>.part`) are never served.
    allowedPath: (pathName) => !isPartialFile(pathName),
    setHeaders: (reply, filePath) => {
      reply.header('content-type', contentTypeFor(filePath));
      reply.header('cache-control', isImmutableMedia(filePath) ? segments : manifests);
      reply.header('x-content-type-options', 'nosniff');
    },
  });
};
