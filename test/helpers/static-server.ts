import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mpd': 'application/dash+xml',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.m4s': 'video/mp4',
  '.mp4': 'video/mp4',
  '.vtt': 'text/vtt',
};

/**
 * Serves files for a player page in Chromium: `/` from `root`, and each of `mounts` (`/name/` → a directory).
 * Only files inside those directories; resolves to the base URL and a close function.
 */
export async function serveStatic(
  mounts: Record<string, string>,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const [, mount = '', ...rest] = decodeURIComponent(url.pathname).split('/');
      const root = mounts[mount];
      const file = root && path.resolve(root, rest.join('/'));
      const info =
        file && file.startsWith(path.resolve(root) + path.sep)
          ? await stat(file).catch(() => undefined)
          : undefined;
      if (!file || !info?.isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, {
        'content-type': types[path.extname(file)] ?? 'application/octet-stream',
        'content-length': info.size,
        // The player page is about:blank: every request is cross-origin.
        'access-control-allow-origin': '*',
      });
      createReadStream(file).pipe(res);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
