import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('configuration from the environment', () => {
  test('no settings: embedded default (local disk, SQLite, port 8080, DASH + HLS)', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.input.kind, 'local');
    assert.equal(c.output.kind, 'local');
    assert.equal(c.queue.kind, 'sqlite');
    assert.deepEqual(c.encode.formats, ['dash', 'hls']);
    assert.deepEqual(
      c.encode.ladder.map((r) => r.height),
      [360, 720],
    );
  });
  test("the seed's bucket variables switch to S3 on their side", () => {
    const c = loadConfig({
      INPUT_S3_BUCKET: 'in',
      OUTPUT_S3_BUCKET: 'out',
      AWS_ACCESS_KEY_ID: 'AK',
      AWS_SECRET_ACCESS_KEY: 'SK',
    });
    assert.equal(c.input.kind === 's3' && c.input.bucket, 'in');
    assert.equal(c.output.kind === 's3' && c.output.bucket, 'out');
    const minio = loadConfig({
      INPUT_S3_BUCKET: 'in',
      S3_ENDPOINT: 'http://minio:9000',
      S3_PUBLIC_ENDPOINT: 'http://localhost:9000',
    });
    assert.equal(minio.input.kind === 's3' && minio.input.publicEndpoint, 'http://localhost:9000');
    assert.equal(minio.input.kind === 's3' && minio.input.forcePathStyle, true);
    assert.throws(
      () => loadConfig({ INPUT_S3_BUCKET: 'in', S3_PUBLIC_ENDPOINT: 'ftp://x' }),
      /S3_PUBLIC_ENDPOINT/,
    );
    const mixed = loadConfig({ OUTPUT_S3_BUCKET: 'out' });
    assert.equal(mixed.input.kind, 'local');
    assert.equal(mixed.output.kind, 's3');
  });
  test('every problem is reported at once, naming the setting, never echoing secrets', () => {
    try {
      loadConfig({
        PORT: 'eighty',
        QUEUE: 'kafka',
        LADDER: '720:fast',
        OUTPUT_FORMATS: 'smooth',
        AWS_SECRET_ACCESS_KEY: 'SUPERSECRET',
      });
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 6, err.message);
      for (const name of ['PORT', 'QUEUE', 'LADDER', 'OUTPUT_FORMATS', 'AWS_ACCESS_KEY_ID'])
        assert.match(err.message, new RegExp(name));
      assert.doesNotMatch(err.message, /SUPERSECRET/);
    }
  });
  test('numbers are written in decimal: hexadecimal and exponents are refused, not read as 80 and 1000', () => {
    for (const [name, value] of [
      ['PORT', '0x50'],
      ['PORT', '1e3'],
      ['WORKER_CONCURRENCY', '2.0'],
      ['MAX_FRAME_RATE', '3e1'],
    ]) {
      assert.throws(
        () => loadConfig({ [name!]: value! }),
        new RegExp(`${name}=${value}`),
        `${name}=${value}`,
      );
    }
    assert.equal(loadConfig({ PORT: '8081' }).port, 8081);
    assert.equal(loadConfig({ MAX_FRAME_RATE: '29.97' }).encode.maxFrameRate, 29.97);
  });
  test('OUTPUT_PREFIX is a relative key prefix: slashes at its ends dropped, . and .. and empty segments refused', () => {
    assert.equal(loadConfig({ OUTPUT_PREFIX: '/vod/2026/' }).outputPrefix, 'vod/2026');
    for (const bad of ['../evil', 'vod//x', 'a/./b']) {
      assert.throws(
        () => loadConfig({ OUTPUT_PREFIX: bad }),
        new RegExp(`OUTPUT_PREFIX=${bad.replace(/\./g, '\\.')}`),
      );
    }
  });
  test('a CALLBACK_URL that no delivery could use is refused at start-up, without echoing its secrets', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return [];
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.problems;
      }
    };
    const withCredentials = problems({ CALLBACK_URL: 'https://hook:pa55word@hooks.example.com/x' });
    assert.deepEqual(withCredentials, ['CALLBACK_URL: must not carry credentials']);
    assert.match(
      problems({ CALLBACK_URL: 'http://10.1.2.3/hook' }).join(),
      /^CALLBACK_URL: points at 10\.1\.2\.3, a private/,
    );
    assert.deepEqual(problems({ CALLBACK_URL: 'http://10.1.2.3/hook', CALLBACK_ALLOW_PRIVATE: 'true' }), []);
    assert.deepEqual(problems({ CALLBACK_URL: 'https://hooks.example.com/dvc?token=abc' }), []);
  });
  test('LADDER parses heights and bitrates with k/M suffixes', () => {
    const c = loadConfig({ LADDER: '240:400k, 1080p:5M' });
    assert.deepEqual(c.encode.ladder, [
      { height: 240, bitrate: 400_000 },
      { height: 1080, bitrate: 5_000_000 },
    ]);
  });
});
