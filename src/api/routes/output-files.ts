import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../app/services.js';
import { contentTypeFor, isImmutableMedia } from '../../jobs/content-type.js';
import { isPartialFile } from '../../storage/keys.js';

/**
 * `GET /output/<key>`: local output over HTTP for the dashboard's player (same origin, behind API_KEY); other
 * players get OUTPUT_DIR from a web server or CDN, and S3 output from the bucket (PUBLIC_BASE_URL).
 */
export const outputFileRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const output = services.config.output;
  if (output.kind !== 'local') return;
  const { segments, manifests } = services.config.cacheControl;
  // @fastify/static's decodeURI leaves `%26`, `%2B`, `%3D`… encoded, so a key with `&+=,;:@$` found no file:
  // each segment is decoded here and encoded again the way decodeURI reads back.
  app.addHook('onRequest', async (req) => {
    const url = req.raw.url ?? '';
    const query = url.indexOf('?');
    const pathname = query === -1 ? url : url.slice(0, query);
    if (!pathname.startsWith('/output/')) return;
    const canonical = pathname.split('/').map(decodeURIReadable).join('/');
    req.raw.url = canonical + (query === -1 ? '' : url.slice(query));
  });
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

/** A path segment percent-encoded so that decodeURI gives back exactly what decodeURIComponent reads in it. */
function decodeURIReadable(segment: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return segment;
  }
  // The sub-delimiters decodeURI would leave encoded are legal as they are in a path.
  return encodeURIComponent(decoded).replace(/%(24|26|2B|2C|3A|3B|3D|40)/gi, (escape) =>
    decodeURIComponent(escape),
  );
}
