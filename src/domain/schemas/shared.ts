import { Type, type SchemaOptions, type Static, type TSchema } from '@sinclair/typebox';

// Helpers that keep the JSON Schema in the shape OpenAPI 3.0 accepts (a single `type` or a type list that
// @fastify/swagger turns into `nullable`, `enum` instead of `const`), with the TypeScript type beside it.

/** One of a fixed list of strings: `{type: 'string', enum}` (TypeBox's literal unions become `const`). */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}) {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}

/** `true` and nothing else (the plan document's `dry_run`). */
export function TrueLiteral(options: SchemaOptions = {}) {
  return Type.Unsafe<true>({ ...options, type: 'boolean', enum: [true] });
}

/** The schema, or null: written as a type list (`["string", "null"]`), which OpenAPI 3.0 shows as nullable. */
export function Nullable<T extends TSchema>(schema: T, options: SchemaOptions = {}) {
  const { type } = schema as { type?: unknown };
  if (typeof type !== 'string') throw new Error('Nullable needs a schema with one type');
  return Type.Unsafe<Static<T> | null>({ ...schema, ...options, type: [type, 'null'] });
}

/** An object of any keys whose values all match `value` (TypeBox's Record uses patternProperties). */
export function Dictionary<T extends TSchema>(value: T, options: SchemaOptions = {}) {
  return Type.Unsafe<Record<string, Static<T>>>({ ...options, type: 'object', additionalProperties: value });
}

/** Any JSON object, kept as it is. */
export function JsonObject(options: SchemaOptions = {}) {
  return Type.Unsafe<Record<string, unknown>>({ ...options, type: 'object', additionalProperties: true });
}

/** The video codecs a package can hold, each with the whole ladder. */
export const videoCodecNames = ['h264', 'av1', 'vp9', 'hevc'] as const;
