import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { TaskFailure } from '../../src/domain/failures.js';
import { summarizeS3Error, toS3Failure } from '../../src/storage/s3-errors.js';

/** An error shaped as the SDK throws it for an S3 error answer. */
const sdkError = (name: string, status: number, message = 'server text') =>
  new S3ServiceException({
    name,
    $fault: status >= 500 ? 'server' : 'client',
    message,
    $metadata: { httpStatusCode: status, requestId: 'REQ123', attempts: 1 },
  });
const netError = (code: string) => Object.assign(new Error(`connect ${code} 10.0.0.1:443`), { code });
const ctx = { bucket: 'media', key: 'in/a.mp4', maxAttempts: 5 };

describe('S3 errors become TaskFailures a person can act on', () => {
  const cases: [string, unknown, string, string][] = [
    ['NoSuchKey', sdkError('NoSuchKey', 404), 'input_not_found', 'input not found'],
    ['bare 404 on an object', sdkError('NotFound', 404), 'input_not_found', 'input not found'],
    ['NoSuchBucket', sdkError('NoSuchBucket', 404), 'storage_denied', 'bucket "media" does not exist'],
    [
      'AccessDenied',
      sdkError('AccessDenied', 403),
      'storage_denied',
      'access denied to bucket "media" (AccessDenied): check the credentials and the bucket policy',
    ],
    [
      'SignatureDoesNotMatch',
      sdkError('SignatureDoesNotMatch', 403),
      'storage_denied',
      'the S3 credentials were rejected for bucket "media" (SignatureDoesNotMatch): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    ],
    [
      'PermanentRedirect',
      sdkError('PermanentRedirect', 301),
      'storage_denied',
      'bucket "media" is in another region or behind another endpoint (PermanentRedirect): check AWS_REGION and S3_ENDPOINT',
    ],
    [
      'no credentials anywhere',
      Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
      'storage_denied',
      'no S3 credentials found for bucket "media": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or give the machine a role',
    ],
    [
      'SlowDown after retries',
      sdkError('SlowDown', 503),
      'storage_error',
      'the S3 service for bucket "media" is unavailable (503 SlowDown) after 5 attempts',
    ],
    [
      'connection refused',
      netError('ECONNREFUSED'),
      'storage_error',
      'the S3 endpoint for bucket "media" could not be reached (ECONNREFUSED) after 5 attempts',
    ],
    [
      'DNS failure',
      netError('ENOTFOUND'),
      'storage_error',
      'the S3 endpoint for bucket "media" could not be reached (ENOTFOUND) after 5 attempts',
    ],
    [
      'an unexpected 4xx',
      sdkError('InvalidArgument', 400),
      'storage_error',
      'S3 request for bucket "media" failed (400 InvalidArgument)',
    ],
  ];
  for (const [what, err, code, message] of cases) {
    test(what, () => {
      const failure = toS3Failure(err, ctx);
      assert.ok(failure instanceof TaskFailure);
      assert.equal(failure.code, code);
      assert.equal(failure.message, message);
    });
  }

  test('the server text and anything else on the error never reach the message or the cause', () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const err = Object.assign(sdkError('AccessDenied', 403, `denied for ${secret}`), { secret });
    const failure = toS3Failure(err, ctx);
    assert.ok(!inspect(failure, { depth: 10 }).includes(secret));
    assert.ok(!JSON.stringify(failure).includes(secret));
    assert.deepEqual((failure as TaskFailure).cause, {
      name: 'AccessDenied',
      status: 403,
      requestId: 'REQ123',
      attempts: 1,
    });
  });

  test('names that are not plain identifiers are not repeated', () => {
    assert.equal(summarizeS3Error({ name: '<script>', $metadata: { httpStatusCode: 500 } }).name, 'HTTP 500');
  });

  test('aborts and TaskFailures pass through untouched', () => {
    const abort = new DOMException('stopped', 'AbortError');
    assert.equal(toS3Failure(abort, ctx), abort);
    const own = new TaskFailure('disk_full', 'full');
    assert.equal(toS3Failure(own, ctx), own);
  });
});
