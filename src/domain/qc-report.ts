import type { QcReport } from './schemas/qc-report.js';

export { qcCheckNames } from './schemas/names.js';
export type { QcCheck, QcCheckName, QcReport, QualityScore } from './schemas/qc-report.js';

/** One line a person reads: the checks that failed and why. */
export function describeFailures(report: QcReport, maxLength = 600): string {
  const text = report.checks
    .filter((c) => !c.passed)
    .map((c) => `${c.name}: ${c.detail}`)
    .join('; ');
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text;
}
