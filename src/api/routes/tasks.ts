import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../app/services.js';
import { isFinal } from '../../queue/task.js';
import { ApiError, errorResponseSchema } from '../errors.js';
import { statusDocumentSchema, toStatusDocument } from '../status-document.js';

const taskIdParams = {
  type: 'object',
  required: ['task_id'],
  properties: { task_id: { type: 'string', maxLength: 100 } },
} as const;

const responses = { 200: statusDocumentSchema, '4xx': errorResponseSchema, '5xx': errorResponseSchema };

export const taskRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const load = async (id: string) => {
    const task = await services.queue.get(id);
    if (!task) throw new ApiError('not_found', 'no task with this id');
    return task;
  };

  app.get<{ Params: { task_id: string } }>(
    '/status/:task_id',
    { schema: { params: taskIdParams, response: responses } },
    async (req) => toStatusDocument(await load(req.params.task_id)),
  );

  const cancel = async (id: string) => {
    const before = await load(id);
    if (isFinal(before.status)) return toStatusDocument(before);
    const task = (await services.queue.cancel(id)) ?? before;
    // A queued task is final at once, and no worker will settle it: its callback is sent from here.
    if (before.status === 'queued' && task.status === 'failed') services.notifier.notify(task);
    return toStatusDocument(task);
  };
  app.post<{ Params: { task_id: string } }>(
    '/tasks/:task_id/cancel',
    { schema: { params: taskIdParams, response: responses } },
    async (req) => cancel(req.params.task_id),
  );
  app.delete<{ Params: { task_id: string } }>(
    '/tasks/:task_id',
    { schema: { params: taskIdParams, response: responses } },
    async (req) => cancel(req.params.task_id),
  );
};
