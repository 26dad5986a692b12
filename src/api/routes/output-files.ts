import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../app/services.js';
import { contentTypeFor, isImmutableMedia } from '../../jobs/content-type.js';
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
  // @fastify/static decodes the path with decodeURI, which leaves `%26`, `%2B`, `%3D`… encoded: the URL of a
  // package whose name has `&`, `+`, `=`, `,`, `;`, `:`, `@` or `$` in it, encoded as the dashboard and the
  // status document encode keys, found no file. Each segment is decoded here and encoded again the way
  // decodeURI reads back.
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
