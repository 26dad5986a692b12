import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../app/services.js';
import { TaskFailure } from '../../domain/failures.js';
import { EncodeRequestSchema, type TaskRequest } from '../../domain/schemas/encode-request.js';
import { toWire } from '../../domain/schemas/wire.js';
import { ErrorBodySchema } from '../../domain/schemas/error-body.js';
import { PlanDocumentSchema, type PlanDocument } from '../../domain/schemas/plan-document.js';
import { StringEnum } from '../../domain/schemas/shared.js';
import { taskStatuses } from '../../domain/schemas/status-document.js';
import { previewTask } from '../../jobs/preview.js';
import { assertCodecsAvailable, toTaskRequest } from '../encode-request.js';
import { QueueFullError } from '../../queue/task-queue.js';
import { ApiError, queueFull } from '../errors.js';
import type { TypeBoxTypeProvider } from '../type-provider.js';

const errors = { '4xx': ErrorBodySchema, '5xx': ErrorBodySchema };

const AcceptedSchema = Type.Object({
  task_id: Type.String(),
  status: StringEnum(taskStatuses),
  status_url: Type.String({ description: 'Where to follow the task: GET /status/{task_id}.' }),
});

/**
 * Plans this process works on at once: each fetches its input (a whole download from S3) and probes it, in
 * the API process. More are refused with 429 rather than queued behind one another.
 */
export const MAX_CONCURRENT_PLANS = 4;

export const encodeRoutes: FastifyPluginAsync<{ services: Services }> = async (untyped, { services }) => {
  const app = untyped.withTypeProvider<TypeBoxTypeProvider>();
  let plansRunning = 0;
  const plan = async (req: FastifyRequest, reply: FastifyReply, body: TaskRequest) => {
    const request = toTaskRequest(body, services);
    await assertCodecsAvailable(request, services);
    if (plansRunning >= MAX_CONCURRENT_PLANS) {
      throw new ApiError(
        'too_many_requests',
        `${MAX_CONCURRENT_PLANS} plans are being made; try again shortly`,
        {
          'retry-after': '2',
        },
      );
    }
    // A client that goes away before its answer stops the probe (and the download from S3).
    const abort = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableEnded) abort.abort(new Error('client closed the connection'));
    };
    reply.raw.once('close', onClose);
    plansRunning++;
    try {
      const doc = await previewTask(
        {
          config: services.config,
          tools: services.tools,
          input: services.input,
          logger: services.logger.child({ reqId: req.id }),
          measuredPixelRate: (preset) => services.metrics.pixelRate(preset),
        },
        request,
        abort.signal,
      );
      return toWire<PlanDocument>(doc);
    } catch (err) {
      if (!(err instanceof TaskFailure)) throw err;
      if (err.code === 'input_not_found') throw new ApiError('not_found', err.message);
      // The service's own trouble, not the request's (a TaskFailure's message is written for clients).
      if (err.code === 'storage_denied' || err.code === 'storage_error' || err.code === 'disk_full') {
        throw new ApiError('not_ready', `the input cannot be read now: ${err.message}`);
      }
      if (err.permanent && err.code !== 'cancelled') throw new ApiError('bad_request', err.message);
      throw err;
    } finally {
      plansRunning--;
      reply.raw.off('close', onClose);
    }
  };

  app.post(
    '/encode',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Convert a video',
        description:
          'Queues a task that converts an input of the input storage into a DASH and/or HLS package and ' +
          'answers 202 with its task_id. Every option is optional; without them the configured defaults ' +
          'apply. With an Idempotency-Key header, repeating the same request returns the same task ' +
          '(another request with the same key is a 409). With ?dry_run=true nothing is queued: the input is ' +
          'probed and the plan is returned with 200, as POST /plan does.',
        querystring: Type.Object(
          {
            dry_run: Type.Optional(
              StringEnum(['true', 'false'], {
                description: 'true: return the plan (200) instead of queueing.',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        headers: Type.Object({
          'idempotency-key': Type.Optional(
            Type.String({
              description: '1 to 255 characters; the same key and body always give the same task.',
            }),
          ),
        }),
        body: EncodeRequestSchema,
        response: { 200: PlanDocumentSchema, 202: AcceptedSchema, ...errors },
      },
    },
    async (req, reply) => {
      if (req.query.dry_run === 'true') return reply.code(200).send(await plan(req, reply, req.body));
      const request = toTaskRequest(req.body, services);
      await assertCodecsAvailable(request, services);
      const idempotencyKey = req.headers['idempotency-key'];
      if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 255)) {
        throw new ApiError('bad_request', 'Idempotency-Key must be 1 to 255 characters');
      }
      const result = await services.queue
        .submit(request, { idempotencyKey, maxQueued: services.config.limits.maxQueuedTasks })
        .catch((err: unknown) => {
          if (!(err instanceof QueueFullError)) throw err;
          throw queueFull();
        });
      if (result.outcome === 'conflict') {
        throw new ApiError('conflict', 'this Idempotency-Key was already used with a different request');
      }
      services.metrics.tasksSubmitted.inc({ outcome: result.outcome });
      req.log.info({ taskId: result.task.id, outcome: result.outcome }, 'task submitted');
      return reply.code(202).send({
        task_id: result.task.id,
        status: result.task.status,
        status_url: `/status/${result.task.id}`,
      });
    },
  );

  app.post(
    '/plan',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Plan a conversion without running it',
        description:
          'Takes the body of POST /encode, fetches and probes the input like a task would, and answers ' +
          'with what a task would do: the renditions after the no-upscale and frame-rate rules, the GOP ' +
          'and segment plan, estimated output size and work time, and warnings about the input (variable ' +
          'frame rate, odd dimensions, rotation, interlacing, missing audio…). No task is created. ' +
          'An input that a task would refuse (not a video, over a limit) is a 400 with the reason.',
        body: EncodeRequestSchema,
        response: { 200: PlanDocumentSchema, ...errors },
      },
    },
    async (req, reply) => plan(req, reply, req.body),
  );
};
