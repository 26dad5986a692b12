import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestService, type TestService } from '../helpers/service.js';
import { openApi30Problems } from './openapi-check.js';

type Operation = {
  summary?: string;
  description?: string;
  tags?: string[];
  security?: unknown[];
  parameters?: { name: string; in: string }[];
  requestBody?: unknown;
  responses: Record<string, { description: string; content?: Record<string, { schema?: unknown }> }>;
};
type Doc = {
  openapi: string;
  info: { description?: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, unknown> };
  security?: unknown[];
};

/** Routes as Fastify's own printRoutes shows them: `METHOD /path`, HEAD left out. */
function routesFromPrint(tree: string): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const at = line.indexOf('── ');
    if (at < 0) continue;
    const depth = Math.round((at - 1) / 4);
    const m = /^(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line.slice(at + 3))!;
    stack.length = depth;
    stack.push(m[1]!);
    for (const method of (m[2] ?? '').split(', ').filter((x) => x && x !== 'HEAD')) {
      out.add(`${method} ${stack.join('')}`);
    }
  }
  return out;
}

const toOpenApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

describe('OpenAPI document', () => {
  let svc: TestService;
  let doc: Doc;
  before(async () => {
    svc = await startTestService({}, { worker: false });
    const res = await fetch(`${svc.url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    doc = (await res.json()) as Doc;
  });
  after(async () => {
    await svc.close();
  });

  test('is a valid OpenAPI 3.0 document', () => {
    assert.deepEqual(openApi30Problems(doc), []);
    assert.match(doc.info.description ?? '', /queue_full/, 'the error codes are documented');
    assert.match(doc.info.description ?? '', /qc_failed/, 'the failure codes are documented');
  });

  test('the checker itself catches 3.1-isms and broken references', () => {
    const broken = {
      openapi: '3.0.3',
      info: { title: 't', version: '1' },
      paths: {
        '/a/{id}': {
          get: {
            responses: {
              200: {
                description: 'x',
                content: { 'application/json': { schema: { type: ['string', 'null'] } } },
              },
              '4xx': { description: 'lower-case range' },
            },
          },
        },
        '/b': { post: { requestBody: { content: {} }, responses: { 200: { $ref: '#/nowhere' } } } },
      },
    };
    const problems = openApi30Problems(broken).join('\n');
    assert.match(problems, /path parameter \{id\} is not declared/);
    assert.match(problems, /is not one 3\.0 type/);
    assert.match(problems, /not a status code/);
    assert.match(problems, /content needs a media type/);
    assert.match(problems, /needs a description/);
  });

  test('covers every registered route, and only those', () => {
    const app = svc.running.app!;
    const listed = new Set(
      Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)),
    );
    const visible = app.routeList.filter((r) => !r.hidden).map((r) => `${r.method} ${toOpenApiPath(r.url)}`);
    assert.ok(visible.length >= 9, `routes seen: ${visible.join(', ')}`);
    assert.deepEqual([...listed].sort(), [...new Set(visible)].sort());
    // The onRoute list agrees with Fastify's own router: no route escaped it.
    // Fastify answers a prefixed plugin's "/" route at both "/docs" and "/docs/" from one registration.
    const trim = (route: string) =>
      route.endsWith('/') && !route.endsWith(' /') ? route.slice(0, -1) : route;
    const routed = [...routesFromPrint(app.printRoutes({ commonPrefix: false }))].map(trim);
    const recorded = new Set(app.routeList.map((r) => trim(`${r.method} ${r.url}`)));
    // (Wildcard routes are static files; the printed radix tree does not spell their full path.)
    for (const route of routed.filter((r) => !r.includes('*')))
      assert.ok(recorded.has(route), `${route} is in the route list`);
    assert.ok(routed.length >= recorded.size - 3, 'the printed tree was read');
    for (const route of [
      'POST /encode',
      'POST /plan',
      'GET /status/{task_id}',
      'GET /tasks',
      'POST /tasks/{task_id}/cancel',
      'DELETE /tasks/{task_id}',
      'GET /healthz',
      'GET /readyz',
      'GET /metrics',
    ]) {
      assert.ok(listed.has(route), `${route} is documented`);
    }
  });

  test('every operation has a summary, a description, a tag and a success response', () => {
    const undocumented: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const name = `${method.toUpperCase()} ${p}`;
        if (!op.summary?.trim()) undocumented.push(`${name}: summary`);
        if (!op.description?.trim()) undocumented.push(`${name}: description`);
        if (!op.tags?.length) undocumented.push(`${name}: tags`);
        const ok = Object.entries(op.responses).filter(([code]) => /^2/.test(code));
        if (!ok.length) undocumented.push(`${name}: a 2xx response`);
        if (ok.some(([, r]) => r.description === 'Default Response' && !r.content))
          undocumented.push(`${name}: a response schema`);
      }
    }
    assert.deepEqual(undocumented, []);
  });

  test('POST /encode documents its body, options and answers', () => {
    const op = doc.paths['/encode']!.post!;
    const body = (op.requestBody as { content: Record<string, { schema: { properties: object } }> }).content[
      'application/json'
    ]!.schema;
    for (const field of [
      'video_filename',
      'callback_url',
      'ladder',
      'segment_duration',
      'formats',
      'output_prefix',
      'metadata',
      'audio_tracks',
      'default_audio_language',
      'subtitles',
    ]) {
      assert.ok(field in body.properties, `body field ${field}`);
    }
    const subtitles = (body.properties as Record<string, { items?: { required?: string[] } }>).subtitles!;
    assert.deepEqual(subtitles.items?.required, ['filename', 'language']);
    // The status document lists the packaged tracks, and what was left out.
    const status = JSON.stringify(doc.paths['/status/{task_id}']!.get!.responses['200']);
    for (const field of ['audio_tracks', 'subtitles', 'warnings', 'subtitles_skipped', 'invalid_subtitles'])
      assert.ok(status.includes(field), `the status document's ${field}`);
    assert.ok(op.parameters?.some((p) => p.name === 'dry_run' && p.in === 'query'));
    assert.ok(op.parameters?.some((p) => p.name === 'idempotency-key' && p.in === 'header'));
    for (const code of ['200', '202', '4XX', '5XX']) assert.ok(op.responses[code], `response ${code}`);
    const list = doc.paths['/tasks']!.get!;
    assert.deepEqual(list.parameters?.map((p) => p.name).sort(), ['cursor', 'limit', 'status']);
  });

  test('the interactive page is served at /docs', async () => {
    const res = await fetch(`${svc.url}/docs`, { redirect: 'follow' });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /swagger/i);
  });
});

describe('OpenAPI document of a service with an API key', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ API_KEY: 'k-openapi-test' }, { worker: false });
  });
  after(async () => {
    await svc.close();
  });

  test('declares the X-API-Key scheme, and the probes as public', async () => {
    const res = await fetch(`${svc.url}/openapi.json`);
    assert.equal(res.status, 200, 'the document itself needs no key');
    const doc = (await res.json()) as Doc;
    assert.deepEqual(doc.components?.securitySchemes?.apiKey, {
      type: 'apiKey',
      in: 'header',
      name: 'X-API-Key',
    });
    assert.deepEqual(doc.security, [{ apiKey: [] }]);
    for (const p of ['/healthz', '/readyz', '/metrics']) assert.deepEqual(doc.paths[p]!.get!.security, []);
    assert.equal(doc.paths['/encode']!.post!.security, undefined, 'the rest inherits the key requirement');
    assert.equal((await fetch(`${svc.url}/metrics`)).status, 200);
    assert.equal((await fetch(`${svc.url}/tasks`)).status, 401);
  });
});
