import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Requires the X-API-Key header; compares digests in constant time, so neither content nor length leaks. */
export function apiKeyGuard(apiKey: string): (req: FastifyRequest) => Promise<void> {
  const expected = digest(apiKey);
  return async (req: FastifyRequest) => {
    const given = req.headers['x-api-key'];
    if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
      throw new ApiError('unauthorized', 'missing or wrong X-API-Key header');
    }
  };
}
