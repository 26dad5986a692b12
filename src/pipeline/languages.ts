/** The tag of a track whose language nobody stated (BCP 47 and ISO 639-2 alike). */
export const UNDETERMINED = 'und';

/** Letters, then subtags of letters and digits: `fr`, `fra`, `pt-BR`, `zh-Hant`. */
const TAG = /^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$/;

/**
 * A BCP 47 tag (`fra`/`fre` → `fr` by CLDR's aliases through Intl; not a language: `und`), since tags end up
 * in manifests and packager arguments and nothing else may pass.
 */
export function toBcp47(tag: string | undefined): string {
  const trimmed = tag?.trim();
  if (!trimmed || !TAG.test(trimmed)) return UNDETERMINED;
  try {
    const [canonical] = Intl.getCanonicalLocales(trimmed);
    return canonical && TAG.test(canonical) ? canonical : UNDETERMINED;
  } catch {
    return UNDETERMINED;
  }
}

/** Whether a request's language tag is one (`fr`, `fra`, `pt-BR`); `und` is not. */
export function isLanguageTag(tag: string): boolean {
  return toBcp47(tag) !== UNDETERMINED;
}

/** Whether two tags name the same language, by their primary subtag (`fr-CA` matches `fr`). */
export function sameLanguage(a: string, b: string): boolean {
  const primary = (t: string) => toBcp47(t).split('-')[0]!.toLowerCase();
  return primary(a) !== UNDETERMINED && primary(a) === primary(b);
}

/** A language's name in itself (`Français`, `Deutsch`), what a viewer looks for in a menu; undefined for `und`. */
export function languageName(tag: string): string | undefined {
  if (tag === UNDETERMINED) return undefined;
  try {
    const name = new Intl.DisplayNames([tag], { type: 'language', fallback: 'none' }).of(tag);
    return name ? name.charAt(0).toLocaleUpperCase(tag) + name.slice(1) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A track's label as it may appear in manifests: the packager's descriptors are `,`- and `=`-separated and HLS
 * quotes attributes, so only letters, marks, digits, spaces and plain punctuation stay (a title is free text).
 */
export function safeLabel(text: string | undefined): string | undefined {
  const kept = text
    ?.normalize('NFC')
    .replace(/[^\p{L}\p{M}\p{N} '()._\-/!?&+]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 64)
    .trim();
  return kept || undefined;
}
