import { removeChunkWork } from '../../jobs/split-steps.js';
import { Type } from '@sinclair/typebox';
import { withdrawAbandoned } from '../../jobs/process-task.js';
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../app/services.js';
import { ErrorBodySchema } from '../../domain/schemas/error-body.js';
import { Nullable, StringEnum } from '../../domain/schemas/shared.js';
import { StatusDocumentSchema, taskStatuses } from '../../domain/schemas/status-document.js';
import { isFinal, type TaskRecord } from '../../domain/task.js';
import { ApiError } from '../errors.js';
import { toStatusDocument } from '../status-document.js';
import type { TypeBoxTypeProvider } from '../type-provider.js';

const taskIdParams = Type.Object({
  task_id: Type.String({ maxLength: 100, description: 'The task_id POST /encode returned.' }),
});

const listQuery = Type.Object(
  {
    status: Type.Optional(StringEnum(taskStatuses, { description: 'Only tasks with this status.' })),
    // Query strings are not coerced (the ajv config keeps types strict), so numbers arrive as digits.
    limit: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,3}$', description: 'Tasks per page, 1 to 100 (default 20).' }),
    ),
    // Both queues page by a number (a sequence, a timestamp): anything else is no cursor they gave.
    cursor: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,20}$', description: 'The next_cursor of the previous page.' }),
    ),
  },
  { additionalProperties: false },
);

const errors = { '4xx': ErrorBodySchema, '5xx': ErrorBodySchema };
const responses = { 200: StatusDocumentSchema, ...errors };

export const taskRoutes: FastifyPluginAsync<{ services: Services }> = async (untyped, { services }) => {
  const app = untyped.withTypeProvider<TypeBoxTypeProvider>();
  const load = async (id: string) => {
    const task = await services.queue.get(id);
    if (!task) throw new ApiError('not_found', 'no task with this id');
    return task;
  };
  const render = async (task: TaskRecord) => {
    const doc = toStatusDocument(task);
    if (task.status === 'queued') doc.queue_position = (await services.queue.position?.(task.id)) ?? null;
    return doc;
  };

  app.get(
    '/status/:task_id',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Status of a task',
        description:
          'The status document: status and stage, progress (0–100), queue_position while queued, ' +
          'eta_seconds while processing, and once completed the output locations, per-stage timings and ' +
          'the QC report; the reason (error, error_code) when failed. The same document is POSTed to the ' +
          'callback URL when the task ends.',
        params: taskIdParams,
        response: responses,
      },
    },
    async (req) => render(await load(req.params.task_id)),
  );

  app.get(
    '/tasks',
    {
      schema: {
        tags: ['tasks'],
        summary: 'List tasks',
        description:
          'Tasks newest first, as status documents, a page at a time: pass the next_cursor of one page as ' +
          'cursor to get the next; next_cursor is null on the last page. Finished tasks are listed while ' +
          'the queue keeps them (TASK_RETENTION_SECONDS with QUEUE=redis).',
        querystring: listQuery,
        response: {
          200: Type.Object({ tasks: Type.Array(StatusDocumentSchema), next_cursor: Nullable(Type.String()) }),
          ...errors,
        },
      },
    },
    async (req) => {
      const limit = req.query.limit === undefined ? 20 : Number(req.query.limit);
      if (limit < 1 || limit > 100) throw new ApiError('bad_request', 'limit must be from 1 to 100');
      const page = await services.queue.list({ status: req.query.status, limit, cursor: req.query.cursor });
      return {
        tasks: await Promise.all(page.tasks.map(render)),
        next_cursor: page.nextCursor ?? null,
      };
    },
  );

  const cancel = async (id: string) => {
    const before = await load(id);
    if (isFinal(before.status)) return toStatusDocument(before);
    const cancelled = await services.queue.cancel(id);
    // A queued task is final at once, and no worker will settle it: its callback is sent from here, by the
    // one request (of any process) that ended it.
    if (cancelled?.endedNow) {
      services.metrics.taskFinished(cancelled.task);
      services.notifier.notify(cancelled.task);
      // Queued again after runs that died (a crashed worker's task, requeued): what they published goes.
      const earlierRuns = cancelled.task.attempts;
      if (earlierRuns > 0) void withdrawAbandoned(cancelled.task, earlierRuns, services);
      // A split task cancelled while its chunk jobs ran: what they stored goes.
      void removeChunkWork(cancelled.task, services);
    }
    return render(cancelled?.task ?? before);
  };
  const cancelDescription =
    'A queued task fails at once with error_code cancelled; a running task is told to stop and fails with ' +
    'cancelled within seconds (the answer may still show it processing). A finished task is left as it is. ' +
    'Answers with the status document.';
  app.post(
    '/tasks/:task_id/cancel',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Cancel a task',
        description: cancelDescription,
        params: taskIdParams,
        response: responses,
      },
    },
    async (req) => cancel(req.params.task_id),
  );
  app.delete(
    '/tasks/:task_id',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Cancel a task (DELETE form)',
        description: `Same as POST /tasks/{task_id}/cancel. ${cancelDescription}`,
        params: taskIdParams,
        response: responses,
      },
    },
    async (req) => cancel(req.params.task_id),
  );
};
