import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Whether the request carries the key; compares digests in constant time, so neither content nor length leaks. */
export function hasApiKey(apiKey: string): (req: FastifyRequest) => boolean {
  const expected = digest(apiKey);
  return (req: FastifyRequest) => {
    const given = req.headers['x-api-key'];
    return typeof given === 'string' && timingSafeEqual(digest(given), expected);
  };
}

/** Requires the X-API-Key header. */
export function apiKeyGuard(apiKey: string): (req: FastifyRequest) => Promise<void> {
  const holds = hasApiKey(apiKey);
  return async (req: FastifyRequest) => {
    if (!holds(req)) throw new ApiError('unauthorized', 'missing or wrong X-API-Key header');
  };
}
