import { Type, type Static } from '@sinclair/typebox';
import { qcCheckNames } from './names.js';
import { StringEnum } from './shared.js';

export { qcCheckNames };

/** The outcome of one check of a package; `detail` says what was found, in words. */
export const QcCheckSchema = Type.Object({
  name: StringEnum(qcCheckNames),
  passed: Type.Boolean(),
  detail: Type.String(),
});

/** PSNR (dB) and SSIM (0..1) of a rendition against the source scaled to its size, averaged over frames. */
export const QualityScoreSchema = Type.Object({
  rendition: Type.String(),
  psnr: Type.Optional(Type.Number()),
  ssim: Type.Optional(Type.Number()),
  // The measurement is informative: it never fails a task.
  error: Type.Optional(Type.String({ description: 'Why this rendition could not be measured.' })),
});

export const QcReportSchema = Type.Object({
  passed: Type.Boolean(),
  checks: Type.Array(QcCheckSchema),
  quality: Type.Optional(
    Type.Array(QualityScoreSchema, {
      description: 'With QC_QUALITY=true: PSNR (dB) and SSIM per rendition against the source scaled to it.',
    }),
  ),
});

export type QcCheckName = (typeof qcCheckNames)[number];
export type QcCheck = Static<typeof QcCheckSchema>;
export type QualityScore = Static<typeof QualityScoreSchema>;
export type QcReport = Static<typeof QcReportSchema>;
