import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import multipart from '@fastify/multipart';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../../app/services.js';
import { ownedWorkDirName } from '../../jobs/work-dirs.js';
import { QueueFullError } from '../../queue/task-queue.js';
import { ErrorBodySchema } from '../../domain/schemas/error-body.js';
import { ApiError, queueFull } from '../errors.js';
import { safeContentType, sanitiseFilename, uploadKeyFor } from './upload-names.js';
import { partialFileName } from '../../storage/keys.js';

/** How long a presigned upload URL stays valid. */
const PRESIGN_SECONDS = 3600;

const uploadOptionsSchema = {
  type: 'object',
  required: ['max_bytes', 'multipart', 'presigned'],
  properties: {
    max_bytes: { type: 'integer', description: 'Largest file accepted (MAX_INPUT_BYTES).' },
    multipart: { type: 'boolean', description: 'POST /uploads takes multipart/form-data with one file.' },
    presigned: {
      type: 'boolean',
      description: 'POST /uploads with JSON {filename, content_type} answers with a URL to PUT the file to.',
    },
  },
} as const;

const uploadedSchema = {
  type: 'object',
  required: ['video_filename'],
  properties: {
    video_filename: { type: 'string', description: 'The key to pass to POST /encode.' },
    bytes: { type: 'integer' },
    upload_url: { type: 'string' },
    method: { type: 'string', enum: ['PUT'] },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    expires_in: { type: 'integer' },
    task_id: { type: 'string' },
    status: { type: 'string' },
    status_url: { type: 'string' },
  },
} as const;

const presignBodySchema = {
  type: 'object',
  required: ['filename'],
  additionalProperties: false,
  properties: {
    filename: { type: 'string', minLength: 1, maxLength: 1024, description: 'The name of the file.' },
    content_type: { type: 'string', maxLength: 100, description: 'Its media type, e.g. video/mp4.' },
    size: { type: 'integer', minimum: 0, description: 'Its size in bytes, checked against the limit.' },
  },
} as const;

interface PresignRequest {
  filename: string;
  content_type?: string;
  size?: number;
}

/**
 * POST /uploads: one multipart file streamed to the input storage (cut at MAX_INPUT_BYTES; `?encode=true`
 * submits it), or for JSON a presigned PUT URL where the storage makes one (S3), for large files.
 */
export const uploadRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const maxBytes = services.config.limits.maxInputBytes;
  await app.register(multipart, {
    limits: { fileSize: maxBytes, files: 1, fields: 10, fieldSize: 1024, parts: 12, headerPairs: 100 },
  });

  app.get(
    '/uploads',
    {
      schema: {
        tags: ['uploads'],
        summary: 'How to upload',
        description:
          'The largest file accepted and the ways POST /uploads takes a file: multipart/form-data always, ' +
          'presigned PUT URLs when the input storage is S3.',
        response: { 200: uploadOptionsSchema, '4xx': ErrorBodySchema },
      },
    },
    async () => ({
      max_bytes: maxBytes,
      multipart: true,
      presigned: typeof services.input.createUploadUrl === 'function',
    }),
  );

  app.post<{ Querystring: { encode?: string }; Body: PresignRequest | undefined }>(
    '/uploads',
    {
      schema: {
        tags: ['uploads'],
        summary: 'Upload a video',
        description:
          'multipart/form-data with one file part: the file is streamed to the input storage under ' +
          '`uploads/<uuid>/<safe name>` (never held in memory, cut off at MAX_INPUT_BYTES with 413), and ' +
          'the answer gives the video_filename for POST /encode; with ?encode=true the task is submitted ' +
          'at once and its task_id is in the answer. JSON {filename, content_type, size} instead answers ' +
          'with a presigned URL to PUT the file to (S3 input storage only; 415 otherwise), then submit ' +
          'the video_filename with POST /encode. The bucket needs a CORS rule allowing PUT for browsers.',
        querystring: {
          type: 'object',
          properties: {
            encode: {
              type: 'string',
              enum: ['true', 'false', '1', '0'],
              description: 'Multipart only: submit a conversion task as soon as the file is stored.',
            },
          },
        },
        body: {
          content: {
            // The multipart parser streams the file and leaves no body (null) to validate.
            'multipart/form-data': {
              schema: {
                type: ['object', 'null'],
                properties: { file: { type: 'string', format: 'binary', description: 'The video file.' } },
              },
            },
            'application/json': { schema: presignBodySchema },
          },
        },
        response: { 201: uploadedSchema, '4xx': ErrorBodySchema, '5xx': ErrorBodySchema },
      },
    },
    async (req, reply) => {
      if (req.isMultipart()) {
        const encode = ['true', '1'].includes(req.query.encode ?? '');
        // Refused before the upload, not after: a client must not send gigabytes only to hear "queue full".
        if (encode) await assertQueueHasRoom(services);
        const stored = await receiveMultipart(req, services);
        const task = encode ? await submitTask(services, stored.key) : undefined;
        req.log.info({ key: stored.key, bytes: stored.bytes, taskId: task?.task_id }, 'upload stored');
        return reply.code(201).send({ video_filename: stored.key, bytes: stored.bytes, ...task });
      }
      if (!req.headers['content-type']?.startsWith('application/json')) {
        throw new ApiError(
          'unsupported_media_type',
          'send the file as multipart/form-data, or JSON {filename, content_type} for an upload URL',
        );
      }
      const body = req.body!;
      if (body.size !== undefined && body.size > maxBytes) throw tooLarge(services);
      if (!services.input.createUploadUrl) {
        throw new ApiError(
          'unsupported_media_type',
          'this input storage takes uploads as multipart/form-data; upload URLs need S3 input storage',
        );
      }
      const key = uploadKeyFor(body.filename);
      const contentType = safeContentType(body.content_type);
      const uploadUrl = await services.input.createUploadUrl(key, contentType, PRESIGN_SECONDS);
      return reply.code(201).send({
        video_filename: key,
        upload_url: uploadUrl,
        method: 'PUT',
        headers: { 'content-type': contentType },
        expires_in: PRESIGN_SECONDS,
      });
    },
  );
};

/**
 * Streams a multipart request's file to the input storage (a `.part` renamed when whole on local disk, a temp
 * file and `Storage.upload` elsewhere); whatever fails, no partial file is left behind.
 */
async function receiveMultipart(
  req: FastifyRequest,
  services: Services,
): Promise<{ key: string; bytes: number }> {
  const file = await req.file();
  if (!file) throw new ApiError('bad_request', 'the form has no file part');
  const key = uploadKeyFor(file.filename || 'video');
  const finalPath = services.input.localFiles?.pathOf(key);
  const tmpDir = finalPath
    ? path.dirname(finalPath)
    : path.join(services.config.workDir, ownedWorkDirName(`upload-${randomBytes(6).toString('hex')}`));
  const tmp = finalPath
    ? partialFileName(finalPath)
    : path.join(tmpDir, sanitiseFilename(file.filename || 'video'));
  await mkdir(tmpDir, { recursive: true });
  try {
    await pipeline(file.file, createWriteStream(tmp, { flags: 'wx' }));
    if (file.file.truncated) throw tooLarge(services);
    const { size } = await stat(tmp);
    if (size === 0) throw new ApiError('bad_request', 'the file is empty');
    if (finalPath) await rename(tmp, finalPath);
    else await services.input.upload(key, tmp, { contentType: safeContentType(file.mimetype) });
    return { key, bytes: size };
  } catch (err) {
    await rm(tmp, { force: true });
    if (finalPath) await rmdir(tmpDir).catch(() => undefined);
    if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(services);
    throw err;
  } finally {
    if (!finalPath) await rm(tmpDir, { recursive: true, force: true });
  }
}

function tooLarge(services: Services): ApiError {
  return new ApiError(
    'payload_too_large',
    `the file is larger than the limit of ${services.config.limits.maxInputBytes} bytes`,
  );
}

/** The same rule as POST /encode. */
async function assertQueueHasRoom(services: Services): Promise<void> {
  const counts = await services.queue.counts();
  if (counts.queued >= services.config.limits.maxQueuedTasks) {
    throw queueFull();
  }
}

async function submitTask(services: Services, key: string) {
  const { task } = await services.queue
    .submit({ videoFilename: key }, { maxQueued: services.config.limits.maxQueuedTasks })
    .catch((err: unknown) => {
      if (!(err instanceof QueueFullError)) throw err;
      // Filled up while the file was uploading: it is stored, and its key can be submitted later.
      throw queueFull(`too many tasks are waiting; submit "${key}" later`);
    });
  services.metrics.tasksSubmitted.inc({ outcome: 'created' });
  return { task_id: task.id, status: task.status, status_url: `/status/${task.id}` };
}
