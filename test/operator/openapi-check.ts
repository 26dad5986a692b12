/**
 * Checks a document against the rules of OpenAPI 3.0 that matter to a client generator: the top-level
 * fields, paths and their templates, operations, parameters, request bodies, responses, references, and
 * Schema Objects as 3.0 defines them (a single `type`, `nullable` instead of type lists, no `const`).
 * Returns the problems found, each with its JSON path; an empty list means valid.
 */
export function openApi30Problems(doc: unknown): string[] {
  const problems: string[] = [];
  const fail = (where: string, what: string) => problems.push(`${where}: ${what}`);
  if (!isObject(doc)) return ['the document is not an object'];
  if (typeof doc.openapi !== 'string' || !/^3\.0\.\d+$/.test(doc.openapi)) fail('openapi', 'not 3.0.x');
  const info = doc.info;
  if (!isObject(info) || typeof info.title !== 'string' || typeof info.version !== 'string')
    fail('info', 'needs title and version strings');
  if (!isObject(doc.paths)) return [...problems, 'paths: missing'];

  const resolve = (ref: string, where: string) => {
    if (!ref.startsWith('#/')) return fail(where, `external $ref ${ref}`);
    let node: unknown = doc;
    for (const part of ref.slice(2).split('/')) {
      node = isObject(node) ? node[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    }
    if (node === undefined) fail(where, `$ref ${ref} does not resolve`);
  };
  const schemaKeys = new Set([
    'title',
    'multipleOf',
    'maximum',
    'exclusiveMaximum',
    'minimum',
    'exclusiveMinimum',
    'maxLength',
    'minLength',
    'pattern',
    'maxItems',
    'minItems',
    'uniqueItems',
    'maxProperties',
    'minProperties',
    'required',
    'enum',
    'type',
    'allOf',
    'oneOf',
    'anyOf',
    'not',
    'items',
    'properties',
    'additionalProperties',
    'description',
    'format',
    'default',
    'nullable',
    'discriminator',
    'readOnly',
    'writeOnly',
    'xml',
    'externalDocs',
    'example',
    'deprecated',
    '$ref',
  ]);
  const types = new Set(['array', 'boolean', 'integer', 'number', 'object', 'string']);
  const checkSchema = (schema: unknown, where: string): void => {
    if (!isObject(schema)) return void fail(where, 'a schema must be an object');
    if (typeof schema.$ref === 'string') return void resolve(schema.$ref, where);
    for (const key of Object.keys(schema)) {
      if (!schemaKeys.has(key) && !key.startsWith('x-'))
        fail(where, `"${key}" is not a 3.0 Schema Object field`);
    }
    if (schema.type !== undefined && !(typeof schema.type === 'string' && types.has(schema.type)))
      fail(where, `type ${JSON.stringify(schema.type)} is not one 3.0 type`);
    if (schema.type === 'array' && schema.items === undefined) fail(where, 'an array schema needs items');
    if (schema.required !== undefined && !(Array.isArray(schema.required) && schema.required.length > 0))
      fail(where, 'required must be a non-empty list');
    if (schema.enum !== undefined && !(Array.isArray(schema.enum) && schema.enum.length > 0))
      fail(where, 'enum must be a non-empty list');
    if (schema.items !== undefined) checkSchema(schema.items, `${where}.items`);
    if (isObject(schema.properties)) {
      for (const [k, v] of Object.entries(schema.properties)) checkSchema(v, `${where}.properties.${k}`);
    }
    if (isObject(schema.additionalProperties))
      checkSchema(schema.additionalProperties, `${where}.additionalProperties`);
    for (const key of ['allOf', 'oneOf', 'anyOf'] as const) {
      const list = schema[key];
      if (list === undefined) continue;
      if (!Array.isArray(list) || list.length === 0) fail(where, `${key} must be a non-empty list`);
      else list.forEach((s, i) => checkSchema(s, `${where}.${key}[${i}]`));
    }
  };
  const checkContent = (content: unknown, where: string) => {
    if (!isObject(content) || Object.keys(content).length === 0)
      return fail(where, 'content needs a media type');
    for (const [type, media] of Object.entries(content)) {
      if (!/^[\w.+*-]+\/[\w.+*-]+$/.test(type)) fail(where, `"${type}" is not a media type`);
      if (!isObject(media)) fail(`${where}.${type}`, 'not an object');
      else if (media.schema !== undefined) checkSchema(media.schema, `${where}.${type}.schema`);
    }
  };

  const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
  for (const [route, item] of Object.entries(doc.paths)) {
    const where = `paths.${route}`;
    if (!route.startsWith('/')) fail(where, 'a path starts with /');
    if (!isObject(item)) {
      fail(where, 'not an object');
      continue;
    }
    const templated = [...route.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    for (const [method, op] of Object.entries(item)) {
      const at = `${where}.${method}`;
      if (!methods.includes(method)) {
        if (!['summary', 'description', 'servers', 'parameters'].includes(method) && !method.startsWith('x-'))
          fail(at, 'unknown field of a Path Item');
        continue;
      }
      if (!isObject(op)) {
        fail(at, 'not an object');
        continue;
      }
      const pathParams = new Set<string>();
      const seen = new Set<string>();
      for (const [i, p] of (Array.isArray(op.parameters) ? op.parameters : []).entries()) {
        const pw = `${at}.parameters[${i}]`;
        if (!isObject(p) || typeof p.name !== 'string') {
          fail(pw, 'needs a name');
          continue;
        }
        if (!['query', 'header', 'path', 'cookie'].includes(String(p.in))) fail(pw, `in "${String(p.in)}"`);
        if (seen.has(`${String(p.in)}:${p.name}`)) fail(pw, `duplicate parameter ${p.name}`);
        seen.add(`${String(p.in)}:${p.name}`);
        if (p.in === 'path') {
          pathParams.add(p.name);
          if (p.required !== true) fail(pw, 'a path parameter must be required');
        }
        if ((p.schema === undefined) === (p.content === undefined))
          fail(pw, 'needs exactly one of schema, content');
        if (p.schema !== undefined) checkSchema(p.schema, `${pw}.schema`);
      }
      for (const name of templated)
        if (!pathParams.has(name)) fail(at, `path parameter {${name}} is not declared`);
      for (const name of pathParams)
        if (!templated.includes(name)) fail(at, `parameter ${name} is not in the path`);
      if (op.requestBody !== undefined) {
        if (!isObject(op.requestBody)) fail(`${at}.requestBody`, 'not an object');
        else checkContent(op.requestBody.content, `${at}.requestBody.content`);
      }
      if (!isObject(op.responses) || Object.keys(op.responses).length === 0) {
        fail(at, 'needs responses');
        continue;
      }
      for (const [code, res] of Object.entries(op.responses)) {
        const rw = `${at}.responses.${code}`;
        if (code !== 'default' && !/^[1-5](\d\d|XX)$/.test(code)) fail(rw, 'not a status code');
        if (!isObject(res) || typeof res.description !== 'string') fail(rw, 'needs a description');
        else if (res.content !== undefined) checkContent(res.content, `${rw}.content`);
      }
    }
  }
  if (isObject(doc.components) && isObject(doc.components.schemas)) {
    for (const [k, v] of Object.entries(doc.components.schemas)) checkSchema(v, `components.schemas.${k}`);
  }
  return problems;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
