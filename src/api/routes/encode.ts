import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../app/services.js';
import { assertCallbackUrl, CallbackTargetError } from '../../callbacks/address-guard.js';
import type { TaskRequest } from '../../queue/task.js';
import { assertSafeKey, UnsafeKeyError } from '../../storage/keys.js';
import { ApiError, errorResponseSchema } from '../errors.js';

const encodeBodySchema = {
  type: 'object',
  required: ['video_filename'],
  additionalProperties: false,
  properties: {
    video_filename: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      description: 'Key of the input in the input storage, e.g. "example.mp4" or "uploads/2024/clip.mov".',
    },
    callback_url: {
      type: 'string',
      minLength: 1,
      maxLength: 2048,
      description: 'Receives a POST with the final status document (overrides CALLBACK_URL).',
    },
  },
} as const;

export const encodeRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.post<{ Body: TaskRequest; Headers: { 'idempotency-key'?: string } }>(
    '/encode',
    {
      schema: {
        body: encodeBodySchema,
        response: {
          202: {
            type: 'object',
            required: ['task_id', 'status'],
            properties: {
              task_id: { type: 'string' },
              status: { type: 'string' },
              status_url: { type: 'string' },
            },
          },
          '4xx': errorResponseSchema,
          '5xx': errorResponseSchema,
        },
      },
    },
    async (req, reply) => {
      const body = req.body;
      try {
        assertSafeKey(body.video_filename);
      } catch (err) {
        if (err instanceof UnsafeKeyError) throw new ApiError('bad_request', err.message);
        throw err;
      }
      if (body.callback_url !== undefined) {
        try {
          assertCallbackUrl(body.callback_url, { allowPrivate: services.config.callback.allowPrivate });
        } catch (err) {
          if (err instanceof CallbackTargetError) throw new ApiError('bad_request', err.message);
          throw err;
        }
      }
      const idempotencyKey = req.headers['idempotency-key'];
      if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 255)) {
        throw new ApiError('bad_request', 'Idempotency-Key must be 1 to 255 characters');
      }
      const counts = await services.queue.counts();
      if (counts.queued >= services.config.limits.maxQueuedTasks) {
        throw new ApiError('queue_full', 'too many tasks are waiting; try again later', {
          'retry-after': '30',
        });
      }
      const request: TaskRequest = { video_filename: body.video_filename };
      if (body.callback_url) request.callback_url = body.callback_url;
      const result = await services.queue.submit(request, { idempotencyKey });
      if (result.outcome === 'conflict') {
        throw new ApiError('conflict', 'this Idempotency-Key was already used with a different request');
      }
      req.log.info({ taskId: result.task.id, outcome: result.outcome }, 'task submitted');
      return reply.code(202).send({
        task_id: result.task.id,
        status: result.task.status,
        status_url: `/status/${result.task.id}`,
      });
    },
  );
};
