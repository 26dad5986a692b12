import type { FastifyServerOptions } from 'fastify';

type SchemaErrorFormatter = NonNullable<FastifyServerOptions['schemaErrorFormatter']>;

/**
 * Fastify's validation message, except that an unknown field is named: `body has an unknown field "x"`
 * rather than ajv's "must NOT have additional properties", which leaves a client guessing which one.
 */
export const formatValidationErrors: SchemaErrorFormatter = (errors, dataVar) => {
  const parts = errors.map((e) => {
    const where = `${dataVar}${e.instancePath || ''}`;
    const field = (e.params as { additionalProperty?: unknown }).additionalProperty;
    if (e.keyword === 'additionalProperties' && typeof field === 'string') {
      return `${where} has an unknown field ${JSON.stringify(field)}`;
    }
    return `${where} ${e.message ?? 'is invalid'}`;
  });
  return new Error(parts.join(', '));
};
