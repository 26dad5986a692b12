// The wire (HTTP bodies, status and plan documents, callbacks, stored JSON) is snake_case; the domain model is
// camelCase. These map one to the other at the edges, with the type following the schema's.

/**
 * Keys whose values are user data or dictionaries keyed by names (stages, storage keys): copied verbatim, their
 * own keys never re-cased. A new dictionary in a schema goes here.
 */
export const verbatimKeys = ['metadata', 'timings', 'digests'] as const;
export type VerbatimKey = (typeof verbatimKeys)[number];
const verbatim: ReadonlySet<string> = new Set(verbatimKeys);

/** `audio_tracks` → `audioTracks`. */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;

/** A wire type with every key camelCased, recursively, except below the verbatim keys. */
export type Domain<T> = T extends readonly (infer E)[]
  ? Domain<E>[]
  : T extends object
    ? { [K in keyof T as K extends string ? CamelCase<K> : K]: K extends VerbatimKey ? T[K] : Domain<T[K]> }
    : T;

export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A wire document (parsed JSON) as the domain holds it. */
export function fromWire<W>(doc: W): Domain<W> {
  return recase(doc, camelCase) as Domain<W>;
}

/** A domain value as the wire shows it; name the wire type: `toWire<StatusDocument>(doc)`. */
export function toWire<W>(value: Domain<W>): W {
  return recase(value, snakeCase) as W;
}

function recase(value: unknown, rename: (key: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => recase(v, rename));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [rename(k), verbatim.has(k) ? v : recase(v, rename)]),
  );
}
